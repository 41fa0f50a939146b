import { LogEvent } from '../features/log-event';
import { BASELINE_MIN_EVENTS, ServiceBaseline } from './service-baseline';

const T0 = Date.UTC(2026, 10, 30, 0, 0);
/** One event every `everyMs` from `start`, latency around `ms` (±20 %, fixed pattern), 5 kB responses. */
const events = (n: number, o: { start?: number; everyMs?: number; ms?: (i: number) => number; bytes?: number; status?: number } = {}): LogEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    timestamp: new Date((o.start ?? T0) + i * (o.everyMs ?? 6000)),
    service: 'api',
    durationMs: (o.ms?.(i) ?? 100) * (0.8 + 0.4 * (((i * 7919) % 100) / 100)),
    statusCode: o.status ?? 200,
    bytes: (o.bytes ?? 5000) * (0.9 + 0.2 * (((i * 104729) % 100) / 100)),
    metadata: {},
  }));

describe(ServiceBaseline.name, () => {
  describe('scoreBatch', () => {
    it('should score nothing while warming up', () => {
      const sut = new ServiceBaseline();
      expect(sut.scoreBatch(events(BASELINE_MIN_EVENTS - 1)).every((s) => s.state === 'warming' && s.prediction === 1)).toBe(true);
    });

    it('should flag slow requests, rare server errors and response sizes far off either way, and explain each', () => {
      const sut = new ServiceBaseline();
      sut.scoreBatch(events(200));
      const [slow, error, big, small, fast, normal] = sut.scoreBatch([
        ...events(1, { ms: () => 2000 }),
        ...events(1, { status: 503 }),
        ...events(1, { bytes: 100_000 }),
        ...events(1, { bytes: 150 }),
        ...events(1, { ms: () => 5 }),
        ...events(1),
      ]);
      expect([slow, error, big, small, fast, normal].map((s) => s.prediction)).toEqual([-1, -1, -1, -1, 1, 1]);
      expect(slow.explanation?.features[0].name).toBe('duration_ms');
      expect(error.explanation?.features[0].name).toBe('status_code');
      expect(big.explanation?.summary).toMatch(/^bytes \d+ is [\d.]+ MADs from this service's median \((49|50)\d\d\) of 200 reference events/);
      expect(small.explanation?.features[0].name).toBe('bytes');
    });

    it('should not let a slow ramp become its reference', () => {
      const sut = new ServiceBaseline();
      // Two hours of normal traffic at 10/min, then latency +3 %/min for 90 minutes.
      sut.scoreBatch(events(1200, { everyMs: 6000 }));
      const ramp = events(900, { start: T0 + 1200 * 6000, everyMs: 6000, ms: (i) => 100 * Math.pow(1.03, i / 10) });
      const scored = ramp.map((e) => sut.scoreBatch([e])[0]);
      // At the end of the ramp (×14) and already at ×2 (minute 24), requests are still anomalous.
      expect(scored.slice(240, 260).every((s) => s.prediction === -1)).toBe(true);
      expect(scored.slice(-10).every((s) => s.prediction === -1)).toBe(true);
    });

    it('should keep anomalous events out of its reference', () => {
      const sut = new ServiceBaseline();
      sut.scoreBatch(events(100));
      for (let i = 0; i < 50; i++) sut.scoreBatch(events(10, { start: T0 + 600_000 + i * 60_000, status: 503 }));
      expect(sut.scoreBatch(events(1, { status: 503, start: T0 + 4 * 3_600_000 }))[0].prediction).toBe(-1);
    });
  });
});
