import { Rng } from './core/rng';
import { DriftMonitor } from './drift-monitor';
import { LogEvent } from './features/log-event';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from './model/anomaly-model';

const T0 = Date.UTC(2025, 10, 14);

/** Traffic of a few services; `slowdown` multiplies latencies; every 7th event lacks its size. */
function traffic(n: number, seed: number, services: string[], slowdown = 1): LogEvent[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const g = Math.sqrt(-2 * Math.log(Math.max(rng.nextDouble(), 1e-12))) * Math.cos(2 * Math.PI * rng.nextDouble());
    const service = services[i % services.length];
    return {
      timestamp: new Date(T0 + Math.floor(rng.nextDouble() * 86_400_000)),
      service,
      durationMs: (service === 'slow' ? 2000 : 100) * Math.exp(0.3 * g) * slowdown,
      statusCode: rng.nextDouble() < 0.02 ? 503 : 200,
      bytes: i % 7 === 0 ? undefined : 4000 + rng.nextInt(2000),
      metadata: {},
    };
  });
}

describe(DriftMonitor.name, () => {
  const model = AnomalyModel.train(traffic(3000, 1, ['api', 'slow', 'batch']), { ...DEFAULT_MODEL_PARAMS, minServiceRows: 300 });

  it('should report, at each recheck, the PSI that the model computes over the last 1,000 events', () => {
    const updates: { seen: number; psi: Record<string, number> }[] = [];
    const sut = new DriftMonitor(0.2, (_tenant, psi) => updates.push({ seen: stream.length, psi }));
    // Known services, one the model has no sub-model for (scored by the global one), then a slowdown.
    const stream: LogEvent[] = [];
    const incoming = [...traffic(2500, 2, ['api', 'slow', 'batch', 'new']), ...traffic(2500, 3, ['api', 'slow', 'batch', 'new'], 3)];
    const sizes = [1, 7, 50, 1, 300, 3, 1500, 2, 99, 100];
    let alerts = 0;
    for (let i = 0, k = 0; i < incoming.length; k++) {
      const batch = incoming.slice(i, i + sizes[k % sizes.length]);
      i += batch.length;
      const before = updates.length;
      stream.push(...batch);
      if (sut.observe('t1', batch, model)) alerts++;
      if (updates.length > before) {
        const expected = model.drift(stream.slice(-1000), 0.2);
        const got = updates[updates.length - 1].psi;
        expect(Object.keys(got).sort()).toEqual(Object.keys(expected.psi).sort());
        // Sums over the sub-models may be added in another order: the rounded figures agree.
        for (const [feature, value] of Object.entries(expected.psi)) expect(Math.abs(got[feature] - value)).toBeLessThanOrEqual(1.0001e-4);
      }
    }
    expect(updates.length).toBeGreaterThanOrEqual(8);
    // The slowdown shows once it fills the window.
    expect(alerts).toBeGreaterThan(0);
    const before = updates.filter((u) => u.seen <= 2500).map((u) => u.psi.log_duration_ms);
    expect(updates[updates.length - 1].psi.log_duration_ms).toBeGreaterThan(2 * Math.max(...before));
  });

  it('should start over when the model changes and keep tenants apart', () => {
    const other = AnomalyModel.train(traffic(3000, 4, ['api', 'slow', 'batch']), { ...DEFAULT_MODEL_PARAMS, minServiceRows: 300 });
    const updates: string[] = [];
    const sut = new DriftMonitor(0.2, (tenant) => updates.push(tenant));
    sut.observe('t1', traffic(150, 5, ['api']), model);
    sut.observe('t2', traffic(150, 6, ['api']), model);
    expect(updates).toEqual([]);
    // 150 more for t1 make 300 with the old model, but a new model judges only what follows it.
    sut.observe('t1', traffic(150, 7, ['api']), other);
    expect(updates).toEqual([]);
    sut.observe('t1', traffic(60, 8, ['api']), other);
    expect(updates).toEqual(['t1']);
    // Without a model nothing is judged.
    expect(sut.observe('t3', traffic(500, 9, ['api']), undefined)).toBe(false);
    expect(updates).toEqual(['t1']);
  });
});
