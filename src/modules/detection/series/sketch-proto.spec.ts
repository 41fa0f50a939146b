import { DDSketch } from '@datadog/sketches-js';
import { Rng } from '../core/rng';
import { sketchToProto } from './sketch-proto';

describe(sketchToProto.name, () => {
  it('gives the same bytes as DDSketch.toProto, and they decode to the same quantiles', () => {
    const rng = new Rng(5);
    for (const n of [1, 3, 40, 2000]) {
      const sketch = new DDSketch();
      // Latencies over several decades, some zero (the zero count), as a minute's sketch holds.
      for (let i = 0; i < n; i++) sketch.accept(i % 17 === 0 ? 0 : Math.exp(rng.nextDouble() * 12) / 10);
      const ours = Buffer.from(sketchToProto(sketch));
      expect(ours.equals(Buffer.from(sketch.toProto()))).toBe(true);
      const back = DDSketch.fromProto(ours);
      for (const q of [0.5, 0.95, 0.99]) {
        const want = sketch.getValueAtQuantile(q);
        expect(Math.abs(back.getValueAtQuantile(q) - want)).toBeLessThanOrEqual(1e-12 * Math.max(1, want));
      }
    }
  });
});
