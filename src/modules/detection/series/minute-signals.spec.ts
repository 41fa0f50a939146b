import { gaussian, poisson, Rng } from '../core/rng';
import { MinuteSignals, MinuteStats, SignalFinding, DEFAULT_SIGNAL_OPTIONS } from './minute-signals';

const MINUTE = 60_000;
const DAY = 1440;

type Change = (minute: number) => { rate?: number; latency?: number; errorShare?: number; bytes?: number } | null;

/**
 * Minutes of one service: Poisson traffic with a daily cycle (×0.5..×1.5), lognormal latency
 * (σ 0.5, a little slower at the peak) with 0.5 % slow outliers, 0.5 % server errors, lognormal sizes.
 */
function* minutes(seed: number, rate: number, n: number, change: Change = () => null): Generator<[number, MinuteStats]> {
  const rng = new Rng(seed);
  for (let m = 0; m < n; m++) {
    const f = Math.sin((2 * Math.PI * m) / DAY);
    const c = change(m) ?? {};
    const count = poisson(rng, rate * (1 + 0.5 * f) * (c.rate ?? 1));
    const s: MinuteStats = { count, errors: 0, latN: 0, latLogSum: 0, latLogSq: 0, bytesN: 0, bytesLogSum: 0, bytesLogSq: 0, anomalies: 0, latMax: 0, latMin: Infinity, bytesMax: 0, bytesMin: Infinity };
    for (let i = 0; i < count; i++) {
      let ms = 200 * (1 + 0.2 * f) * Math.exp(0.5 * gaussian(rng)) * (c.latency ?? 1);
      if (rng.nextDouble() < 0.005) ms *= 5 + 5 * rng.nextDouble();
      const l = Math.log1p(ms);
      s.latN++;
      s.latLogSum += l;
      s.latLogSq += l * l;
      s.latMax = Math.max(s.latMax, l);
      s.latMin = Math.min(s.latMin, l);
      if (rng.nextDouble() < (c.errorShare ?? 0.005)) s.errors++;
      const b = Math.log1p(5000 * Math.exp(0.3 * gaussian(rng)) * (c.bytes ?? 1));
      s.bytesN++;
      s.bytesLogSum += b;
      s.bytesLogSq += b * b;
      s.bytesMax = Math.max(s.bytesMax, b);
      s.bytesMin = Math.min(s.bytesMin, b);
      if (rng.nextDouble() < 0.01) s.anomalies++;
    }
    if (!count) s.latMin = s.bytesMin = 0;
    yield [m * MINUTE, s];
  }
}

function run(seed: number, rate: number, n: number, change?: Change): { minute: number; f: SignalFinding }[] {
  const sut = new MinuteSignals(DEFAULT_SIGNAL_OPTIONS);
  const out: { minute: number; f: SignalFinding }[] = [];
  for (const [t, s] of minutes(seed, rate, n, change)) for (const f of sut.update(t, s)) out.push({ minute: t / MINUTE, f });
  return out;
}

const START = 600;
const firstAt = (found: { minute: number; f: SignalFinding }[], signal: string) => found.find((x) => x.f.signal === signal && x.minute >= START)?.minute;

describe(MinuteSignals.name, () => {
  describe('update', () => {
    it.each([10, 30])('should find nothing in two days of normal traffic at %i requests/min (daily cycle, outliers, rare errors)', (rate) => {
      for (const seed of [1, 2, 3]) expect(run(seed, rate, 2 * DAY).map((x) => `${x.minute} ${x.f.summary}`)).toEqual([]);
    });

    it.each([10, 30])('should find a latency spike ×6 within its first minutes at %i requests/min', (rate) => {
      const found = run(4, rate, START + 60, (m) => (m >= START && m < START + 6 ? { latency: 6 } : null));
      expect(firstAt(found, 'latency')).toBeLessThanOrEqual(START + 1);
    });

    it.each([10, 30])('should find an error burst (35 %% for 4 min) within 3 minutes at %i requests/min', (rate) => {
      const found = run(5, rate, START + 60, (m) => (m >= START && m < START + 4 ? { errorShare: 0.35 } : null));
      expect(firstAt(found, 'errors')).toBeLessThanOrEqual(START + 2);
    });

    it('should not find a single server error in a minute of few requests', () => {
      const found = run(6, 4, START + 60, (m) => (m === START ? { errorShare: 0.3 } : null));
      expect(found.filter((x) => x.f.signal === 'errors')).toEqual([]);
    });

    it.each([5, 10, 30])('should find a drop to zero requests within 5 minutes at %i requests/min', (rate) => {
      const found = run(7, rate, START + 60, (m) => (m >= START && m < START + 20 ? { rate: 0 } : null));
      const first = found.find((x) => x.f.signal === 'traffic');
      expect(first?.f.direction).toBe('down');
      expect(first!.minute).toBeLessThanOrEqual(START + 4);
      // Dated from its first empty minute, whatever window found it.
      expect(first!.f.since).toBe(START * MINUTE);
    });

    it.each([10, 30])('should find response sizes ×20 within 2 minutes at %i requests/min', (rate) => {
      const found = run(8, rate, START + 60, (m) => (m >= START && m < START + 10 ? { bytes: 20 } : null));
      expect(firstAt(found, 'payload')).toBeLessThanOrEqual(START + 1);
    });

    it.each([10, 30])('should find a slow degradation of +3 %%/min within 20 minutes at %i requests/min', (rate) => {
      const found = run(9, rate, START + 200, (m) => (m >= START ? { latency: Math.pow(1.03, Math.min(90, m - START)) } : null));
      expect(firstAt(found, 'latency')).toBeLessThanOrEqual(START + 20);
    });

    it.each([10, 30])('should find nothing for a deploy that makes the service 40 %% faster at %i requests/min', (rate) => {
      const found = run(10, rate, START + 600, (m) => (m >= START ? { latency: 0.6 } : null));
      expect(found.map((x) => x.f.summary)).toEqual([]);
    });

    it.each([10, 30])('should find nothing for a lasting traffic increase of 60 %% at %i requests/min', (rate) => {
      const found = run(11, rate, START + 600, (m) => (m >= START ? { rate: 1.6 } : null));
      expect(found.map((x) => x.f.summary)).toEqual([]);
    });

    it.each([10, 30])('should take a faster deploy as the new level at once, so a slowdown an hour later is found against it (%i requests/min)', (rate) => {
      // 40 % faster from START; an hour later ×1.5 of that (still 10 % faster than before the deploy).
      const found = run(15, rate, START + 120, (m) => (m >= START + 60 ? { latency: 0.9 } : m >= START ? { latency: 0.6 } : null));
      expect(found.filter((x) => x.minute < START + 60)).toEqual([]);
      expect(firstAt(found, 'latency')).toBeLessThanOrEqual(START + 60 + 10);
    });

    it('should take the end of a lasting degradation at once: a new slow degradation two hours later is found in time', () => {
      // ×3 for 5 hours (learnt as the new normal after MAX_FROZEN), fixed at START + 300, a +3 %/min ramp from START + 420.
      const found = run(16, 10, START + 500, (m) =>
        m >= START + 420 ? { latency: Math.pow(1.03, Math.min(90, m - START - 420)) } : m >= START && m < START + 300 ? { latency: 3 } : null,
      );
      const ramp = found.find((x) => x.f.signal === 'latency' && x.minute >= START + 420);
      expect(ramp!.minute).toBeLessThanOrEqual(START + 420 + 20);
      expect(found.filter((x) => x.minute >= START + 300 && x.minute < START + 420)).toEqual([]);
    });

    it('should learn a lasting change as the new normal instead of flagging it for ever', () => {
      const found = run(12, 10, START + 600, (m) => (m >= START ? { latency: 3 } : null));
      expect(found.length).toBeGreaterThan(0);
      expect(found.filter((x) => x.minute > START + 300)).toEqual([]);
    });
  });

  describe('dating', () => {
    it('should date a traffic drop from its first empty minute when a longer window, reaching back into quiet but normal minutes, finds it', () => {
      // Bursty traffic (dispersion 2) at 5 requests/min: only a long window can tell an outage from a lull.
      const count = (n: number): MinuteStats => ({ count: n, errors: 0, latN: 0, latLogSum: 0, latLogSq: 0, bytesN: 0, bytesLogSum: 0, bytesLogSq: 0, anomalies: 0, latMax: 0, latMin: 0, bytesMax: 0, bytesMin: 0 });
      const state = MinuteSignals.emptyState();
      state.traffic = { mean: 5, dispersion: 2, minutes: 500 };
      const sut = new MinuteSignals(DEFAULT_SIGNAL_OPTIONS, state);
      let t = 0;
      for (let i = 0; i < 20; i++) sut.update((t += MINUTE), count(5));
      for (let i = 0; i < 4; i++) expect(sut.update((t += MINUTE), count(3))).toEqual([]);
      const firstEmpty = t + MINUTE;
      let found: SignalFinding[] = [];
      for (let i = 0; i < 20 && !found.length; i++) found = sut.update((t += MINUTE), count(0));
      expect(found[0]?.signal).toBe('traffic');
      expect(found[0].since).toBe(firstEmpty);
    });
  });

  describe('toJSON', () => {
    it('should restore to the same decisions', () => {
      const a = new MinuteSignals();
      const gen = [...minutes(13, 10, 400, (m) => (m >= 380 ? { latency: 6 } : null))];
      for (const [t, s] of gen.slice(0, 300)) a.update(t, s);
      const b = MinuteSignals.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
      for (const [t, s] of gen.slice(300)) expect(b.update(t, s)).toEqual(a.update(t, s));
    });

    it('should reject a state of another format', () => {
      expect(() => MinuteSignals.fromJSON({ version: 1 })).toThrow('not a minute-signals state');
    });

    it('should stay small', () => {
      const a = new MinuteSignals();
      for (const [t, s] of minutes(14, 30, 100)) a.update(t, s);
      expect(JSON.stringify(a.toJSON()).length).toBeLessThan(4096);
    });
  });
});
