import { Rng } from '../core/rng';
import { SeriesDetectorError } from './errors';
import { StateReader, StateWriter } from './state-codec';
import { TAIL_BINS, TailModel, tailBin } from './tail-model';

const OPTIONS = { memory: 100_000, tailFraction: 0.05, minTailWeight: 10, maxShape: 0.5 };

/** |N(0,1)| draws. */
function halfNormal(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng.nextDouble();
    out[i] = Math.abs(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble()));
  }
  return out;
}

describe(TailModel.name, () => {
  describe('probability', () => {
    it('should match the empirical tail inside the data and stay calibrated beyond it', () => {
      const sut = new TailModel(OPTIONS);
      for (const x of halfNormal(20_000, 1)) sut.add(x);
      // P(|Z| ≥ 1) = 0.3173, P(|Z| ≥ 2) = 0.0455, P(|Z| ≥ 3) = 0.0027
      expect(sut.probability(1)).toBeCloseTo(0.3173, 1);
      expect(sut.probability(2)).toBeGreaterThan(0.035);
      expect(sut.probability(2)).toBeLessThan(0.056);
      expect(sut.probability(3)).toBeGreaterThan(0.001);
      expect(sut.probability(3)).toBeLessThan(0.006);
      // Far beyond the data: tiny, finite, and decreasing.
      expect(sut.probability(10)).toBeLessThan(1e-5);
      expect(sut.probability(20)).toBeLessThan(sut.probability(10));
      expect(sut.probability(1e9)).toBeGreaterThan(0);
      expect(sut.probability(0)).toBe(1);
    });

    it('should learn that large values are usual in a heavy-tailed statistic', () => {
      const light = new TailModel(OPTIONS);
      const heavy = new TailModel(OPTIONS);
      const rng = new Rng(2);
      for (let i = 0; i < 5000; i++) {
        light.add(Math.abs(rng.nextDouble()));
        heavy.add(1 / Math.max(1e-6, rng.nextDouble()));
      }
      expect(heavy.surprise(50)).toBeLessThan(2);
      expect(light.surprise(50)).toBeGreaterThan(10);
    });

    it('should handle a mostly-zero statistic without claiming certainty', () => {
      const sut = new TailModel(OPTIONS);
      for (let i = 0; i < 1000; i++) sut.add(i % 100 === 0 ? 20 : 0);
      expect(sut.surprise(20)).toBeLessThan(3);
      expect(sut.surprise(25)).toBeLessThan(6);
    });

    it('should forget old observations', () => {
      const sut = new TailModel({ ...OPTIONS, memory: 200 });
      for (let i = 0; i < 2000; i++) sut.add(i < 1000 ? 10 : 1);
      expect(sut.effectiveCount()).toBeLessThan(220);
      expect(sut.surprise(10)).toBeGreaterThan(2);
    });
  });

  describe('writeState', () => {
    it('should restore identical probabilities', () => {
      const sut = new TailModel(OPTIONS);
      for (const x of halfNormal(3000, 3)) sut.add(x);
      const w = new StateWriter();
      sut.writeState(w);
      const back = TailModel.readState(new StateReader(w.finish(), 'test'), OPTIONS);
      for (const x of [0.1, 1, 2.5, 7, 100]) expect(back.probability(x)).toBe(sut.probability(x));
    });

    it('should reject truncated state', () => {
      const w = new StateWriter();
      new TailModel(OPTIONS).writeState(w);
      const cut = new StateWriter();
      cut.array(new Uint8Array(w.bytes().subarray(0, 100)));
      expect(() => TailModel.readState(new StateReader(cut.finish(), 'test'), OPTIONS)).toThrow(SeriesDetectorError);
    });
  });

  describe('constructor', () => {
    it('should reject out-of-range options', () => {
      expect(() => new TailModel({ ...OPTIONS, memory: 0 })).toThrow(SeriesDetectorError);
      expect(() => new TailModel({ ...OPTIONS, tailFraction: 1 })).toThrow(SeriesDetectorError);
    });
  });
});

describe(tailBin.name, () => {
  it('should put zero and tiny values in bin 0 and huge ones in the last bin', () => {
    expect(tailBin(0)).toBe(0);
    expect(tailBin(1e-9)).toBe(0);
    expect(tailBin(1)).toBeGreaterThan(0);
    expect(tailBin(1e30)).toBe(TAIL_BINS - 1);
    expect(tailBin(2)).toBeGreaterThan(tailBin(1));
  });
});
