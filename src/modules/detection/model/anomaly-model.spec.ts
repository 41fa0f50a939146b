import { LogEvent } from '../features/log-event';
import { Rng } from '../core/rng';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from './anomaly-model';

const T0 = Date.UTC(2025, 10, 14);

/** Normal traffic of one or two services over a day, reproducible. */
function traffic(n: number, seed = 1, services = ['api']): LogEvent[] {
  const rng = new Rng(seed);
  const out: LogEvent[] = [];
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(Math.max(rng.nextDouble(), 1e-12))) * Math.cos(2 * Math.PI * rng.nextDouble());
    const service = services[i % services.length];
    out.push({
      timestamp: new Date(T0 + Math.floor(rng.nextDouble() * 86_400_000)),
      service,
      durationMs: (service === 'slow' ? 2000 : 100) * Math.exp(0.3 * g),
      statusCode: rng.nextDouble() < 0.01 ? 404 : 200,
      bytes: 4000 + rng.nextInt(2000),
      metadata: {},
    });
  }
  return out;
}

const at = (over: Partial<LogEvent>): LogEvent => ({
  timestamp: new Date(T0 + 12 * 3_600_000),
  service: 'api',
  durationMs: 100,
  statusCode: 200,
  bytes: 5000,
  metadata: {},
  ...over,
});

describe(AnomalyModel.name, () => {
  const params = { ...DEFAULT_MODEL_PARAMS, minServiceRows: 300 };

  describe('score', () => {
    const sut = AnomalyModel.train(traffic(3000), params);

    it('should flag a latency spike and explain it by duration', () => {
      const [normal, spike] = sut.score([at({}), at({ durationMs: 5000 })]);
      expect(normal.prediction).toBe(1);
      expect(spike.prediction).toBe(-1);
      expect(spike.score).toBeLessThan(normal.score);
      expect(spike.explanation?.features[0]).toMatchObject({ name: 'duration_ms', value: 5000 });
      expect(spike.explanation?.summary).toMatch(/^duration_ms 5000 is above the training p99 \(\d+(\.\d+)?\)/);
    });

    it('should flag a server error and name the status', () => {
      const [err] = sut.score([at({ statusCode: 503 })]);
      expect(err.prediction).toBe(-1);
      expect(err.explanation?.features[0].name).toBe('status_code');
    });

    it('should not flag a request that is merely fast, nor a routine 404', () => {
      const [fast, notFound] = sut.score([at({ durationMs: 5 }), at({ statusCode: 404 })]);
      expect(fast.prediction).toBe(1);
      expect(notFound.prediction).toBe(1);
    });

    it('should impute a missing duration with the training median, not zero', () => {
      const [missing] = sut.score([at({ durationMs: undefined })]);
      expect(missing.prediction).toBe(1);
    });

    it('should flag about the contamination share of the training data', () => {
      const data = traffic(3000, 9);
      const flagged = sut.score(data, { explain: false }).filter((s) => s.prediction === -1).length;
      expect(flagged / data.length).toBeGreaterThan(0.001);
      expect(flagged / data.length).toBeLessThan(0.05);
    });
  });

  describe('train', () => {
    it('should give services with enough rows their own sub-model', () => {
      const sut = AnomalyModel.train(traffic(1000, 2, ['api', 'slow', 'rare']).slice(0, 700), params);
      expect(sut.serviceNames.sort()).toEqual([]);
      const big = AnomalyModel.train(traffic(1000, 2, ['api', 'slow']), params);
      expect(big.serviceNames.sort()).toEqual(['api', 'slow']);
      // 2 s is normal for the slow service, a spike for api.
      const [slowOk, apiSpike] = big.score([at({ service: 'slow', durationMs: 2000 }), at({ service: 'api', durationMs: 2000 })]);
      expect(slowOk.prediction).toBe(1);
      expect(apiSpike.prediction).toBe(-1);
      expect(apiSpike.subModel).toBe('api');
    });

    it('should refuse an empty training set', () => {
      expect(() => AnomalyModel.train([], params)).toThrow('no events');
    });
  });

  describe('toJSON', () => {
    it('should round-trip to identical scores', () => {
      const sut = AnomalyModel.train(traffic(1500, 3, ['api', 'slow']), params);
      const loaded = AnomalyModel.fromJSON(JSON.parse(JSON.stringify(sut.toJSON())));
      const probe = traffic(200, 4, ['api', 'slow', 'other']);
      expect(loaded.score(probe).map((s) => s.score)).toEqual(sut.score(probe).map((s) => s.score));
    });

    it('should reject a file that is not a model', () => {
      expect(() => AnomalyModel.fromJSON({ format: 'x' })).toThrow('not an anomaly-detector model');
      expect(() => AnomalyModel.fromJSON({ ...AnomalyModel.train(traffic(300), params).toJSON(), version: 9 })).toThrow('unsupported');
    });
  });

  describe('novelty', () => {
    /** `n` events of one service over `hours` of event time, every field as `over` says. */
    const steady = (n: number, hours: number, over: (i: number) => Partial<LogEvent>): LogEvent[] =>
      Array.from({ length: n }, (_, i) => at({ timestamp: new Date(T0 + Math.floor((i * hours * 3_600_000) / n)), ...over(i) }));
    const train = (events: LogEvent[]) => AnomalyModel.train(events, params);
    const varied = (i: number) => 90 + ((i * 37) % 41);

    it('should score bytes 1001 normal where training bytes were always 1000 (case 09)', () => {
      const sut = train(steady(600, 100 / 60, (i) => ({ durationMs: varied(i), bytes: 1000 })));
      const [same, plusOne, double] = sut.score([at({ durationMs: 110, bytes: 1000 }), at({ durationMs: 110, bytes: 1001 }), at({ durationMs: 110, bytes: 1900 })]);
      expect([same.prediction, plusOne.prediction, double.prediction]).toEqual([1, 1, 1]);
    });

    it.each([
      ['duration_ms', { durationMs: 100 }, { durationMs: 101 }, { durationMs: 150 }],
      ['bytes at 0', { bytes: 0 }, { bytes: 1 }, { bytes: 90 }],
      ['duration_ms at 0', { durationMs: 0 }, { durationMs: 1 }, { durationMs: 8 }],
      ['bytes', { bytes: 52_000 }, { bytes: 51_990 }, { bytes: 60_000 }],
      ['status_code within its class', { statusCode: 200 }, { statusCode: 201 }, { statusCode: 404 }],
    ])('should give %s that never varied a relative tolerance', (_name, constant, near, further) => {
      const sut = train(steady(600, 2, (i) => ({ durationMs: varied(i), bytes: 5000 + (i % 50), ...constant })));
      const scored = sut.score([at({ durationMs: 110, ...constant }), at({ durationMs: 110, ...near }), at({ durationMs: 110, ...further })]);
      expect(scored.map((s) => s.prediction)).toEqual([1, 1, 1]);
    });

    it('should still flag a value far outside a constant, and keep the strict rule for the status class', () => {
      const sut = train(steady(600, 2, (i) => ({ durationMs: varied(i), bytes: 1000 })));
      const [huge, error, throttled] = sut.score([at({ durationMs: 110, bytes: 50_000 }), at({ durationMs: 110, bytes: 1000, statusCode: 503 }), at({ durationMs: 110, bytes: 1000, statusCode: 429 })]);
      expect(huge.prediction).toBe(-1);
      expect(huge.explanation?.features[0].name).toBe('bytes');
      expect(error.prediction).toBe(-1);
      expect(error.explanation?.features[0].name).toBe('status_code');
      expect(throttled.prediction).toBe(-1);
    });

    it('should not flag a feature absent in training when it appears, nor name it in an explanation', () => {
      const sut = train(steady(600, 2, (i) => ({ durationMs: varied(i), bytes: undefined })));
      const [withBytes, slow] = sut.score([at({ durationMs: 110, bytes: 123_456 }), at({ durationMs: 5000, bytes: 9 })]);
      expect(withBytes.prediction).toBe(1);
      expect(slow.prediction).toBe(-1);
      expect(slow.explanation?.features.map((f) => f.name)).toEqual(['duration_ms']);
      expect(sut.stats()).toMatchObject({ global: { absentFeatures: ['log_bytes'] } });
    });
  });

  describe('time of day', () => {
    it('should leave the time features out when training covers less than a day, and never explain by them', () => {
      const afternoon = Array.from({ length: 2000 }, (_, i) => at({ timestamp: new Date(T0 + 14 * 3_600_000 + i * 1000), durationMs: 80 + ((i * 37) % 41) }));
      const sut = AnomalyModel.train(afternoon, params);
      expect(sut.stats()).toMatchObject({ global: { timeOfDay: false } });
      const night = Array.from({ length: 200 }, (_, i) => at({ timestamp: new Date(T0 + 3 * 3_600_000 + i * 7000), durationMs: 80 + ((i * 53) % 41) }));
      const flagged = sut.score(night).filter((s) => s.prediction === -1);
      expect(flagged.length).toBeLessThanOrEqual(4);
      const [spike] = sut.score([at({ timestamp: new Date(T0 + 3 * 3_600_000), durationMs: 9000 })]);
      expect(spike.explanation?.features.map((f) => f.name)).not.toContain('hour_of_day');
    });

    it('should use the time features when training covers the daily cycle', () => {
      expect(AnomalyModel.train(traffic(1000), params).stats()).toMatchObject({ global: { timeOfDay: true } });
    });
  });

  describe('drift', () => {
    const sut = AnomalyModel.train(traffic(3000), params);
    it('should stay quiet on the training distribution and alert on a shift, naming the feature', () => {
      const same = sut.drift(traffic(1000, 5), 0.2);
      expect(same.alert).toBe(false);
      const slower = sut.drift(traffic(1000, 6).map((e) => ({ ...e, durationMs: e.durationMs! * 3 })), 0.2);
      expect(slower.alert).toBe(true);
      expect(slower.psi.log_duration_ms).toBeGreaterThan(0.2);
      expect(slower.psi.log_bytes).toBeLessThan(0.2);
    });
  });
});
