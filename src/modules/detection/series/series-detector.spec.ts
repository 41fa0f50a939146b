import { gaussian as coreGaussian, Rng } from '../core/rng';
import { SeriesDetectorError } from './errors';
import {
  SeriesDetector,
  SeriesDetectorJson,
  SeriesDetectorOptions,
  SeriesResult,
  seriesDefaultsFor,
} from './series-detector';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2025, 0, 6); // a Monday, 00:00 UTC

/** Standard normal draws from the seeded core RNG (Box–Muller). */
function gaussian(rng: Rng): number {
  const u = 1 - rng.nextDouble();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
}

/** Poisson draw (Knuth; fine for the small means used here). */
function poisson(rng: Rng, mean: number): number {
  const l = Math.exp(-mean);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rng.nextDouble();
  } while (p > l);
  return k - 1;
}

/** Per-minute series: a daily cycle (peak mid-afternoon) plus noise, `days` long. */
function dailySeries(days: number, seed: number, base = 100, amplitude = 40, noise = 3): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  for (let i = 0; i < days * 1440; i++) {
    const phase = ((i % 1440) / 1440) * 2 * Math.PI;
    out.push(base + amplitude * Math.sin(phase - Math.PI / 2) + noise * gaussian(rng));
  }
  return out;
}

function feed(sut: SeriesDetector, values: Array<number | null>, start = T0, step = MINUTE): SeriesResult[] {
  return values.map((v, i) => sut.update(start + i * step, v));
}

function maxLikelihood(results: SeriesResult[], from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, results[i].likelihood);
  return m;
}

describe(SeriesDetector.name, () => {
  describe('constructor', () => {
    it('should reject an unknown direction or missing policy', () => {
      expect(() => new SeriesDetector({ direction: 'sideways' as SeriesDetectorOptions['direction'] })).toThrow(
        SeriesDetectorError,
      );
      expect(() => new SeriesDetector({ missing: 'guess' as SeriesDetectorOptions['missing'] })).toThrow(
        SeriesDetectorError,
      );
      expect(() => new SeriesDetector({ intervalMs: 0 })).toThrow(SeriesDetectorError);
    });
  });

  describe('update', () => {
    it('should give likelihoods in [0, 1] and an expected value once there is a past', () => {
      const sut = new SeriesDetector();
      const out = feed(sut, dailySeries(1, 1));
      expect(out[0].expected).toBeUndefined();
      for (const r of out) {
        expect(r.likelihood).toBeGreaterThanOrEqual(0);
        expect(r.likelihood).toBeLessThanOrEqual(1);
      }
      expect(out[out.length - 1].expected).toBeGreaterThan(0);
    });

    it('should flag a spike injected into a seasonal series, and nothing else that day as strongly', () => {
      const values = dailySeries(4, 2);
      const spike = 3 * 1440 + 15 * 60; // day 4, 15:00 — near the daily peak
      values[spike] += 40;
      const sut = new SeriesDetector({ direction: 'both' });
      const out = feed(sut, values);
      // Above likelihood 0.9999 (the threshold live series used when they ran this detector): a single
      // spike rests on the point evidence, which NAB's scores alone would not miss.
      expect(out[spike].likelihood).toBeGreaterThan(0.9999);
      expect(out[spike].direction).toBe('up');
      const rest = Math.max(maxLikelihood(out, 3 * 1440, spike - 5), maxLikelihood(out, spike + 60, 4 * 1440));
      expect(rest).toBeLessThan(out[spike].likelihood);
    });

    it('should not flag the daily cycle itself once it has been seen', () => {
      const out = feed(new SeriesDetector(), dailySeries(4, 3));
      // The peak and trough of days 3 and 4 are expected by then.
      expect(maxLikelihood(out, 2 * 1440, 4 * 1440)).toBeLessThan(0.9999);
    });

    it('should raise about one report per 1000 points at the NAB threshold on long normal counts', () => {
      // 5-minute counts with a daily and weekly cycle, no anomaly, 15,000 points (NAB's tweet volumes are
      // this long). With the remembered extremes relaxing (an earlier build) a "new extreme" recurred in
      // such noise: about 2 reports per 1000 points here; bench/series-null.bench.ts has the other kinds.
      // Likelihood 0.9955 is where the NAB scorer puts the standard threshold for this build (0.95 before
      // the time-of-day discount counted its points; the scale moved, the rate here did not).
      const DAY = 24 * HOUR;
      let reports = 0;
      let scored = 0;
      for (let seed = 1; seed <= 3; seed++) {
        const rng = new Rng(seed);
        const sut = new SeriesDetector({ direction: 'both', missing: 'skip' });
        for (let i = 0; i < 15_000; i++) {
          const t = T0 + i * 5 * MINUTE;
          const weekend = Math.floor((t - T0) / DAY) % 7 >= 5 ? 0.6 : 1;
          const mean = 20 * (1 + 0.8 * Math.sin((2 * Math.PI * (t % DAY)) / DAY)) * weekend;
          const r = sut.update(t, poisson(rng, mean));
          if (i < 750) continue; // NAB's probationary period
          scored++;
          if (r.likelihood >= 0.9955) reports++;
        }
      }
      expect((1000 * reports) / scored).toBeLessThan(1.3);
    });

    it('should raise as many false alarms per point at one threshold whatever the sampling interval', () => {
      // One kind of normal series (log-normal noise on a daily and weekly cycle) sampled every hour, every
      // 5 minutes and every minute, 16 seeds each, reports at surprise 1.3 counted after NAB's probationary
      // period. When the time-of-day discount subtracted the whole remembered peak (the build before issue
      // 14's third session), the hourly series, with fewer points behind each remembered peak and so a
      // smaller discount, raised 2.7 times the reports per point of the 5-minute one (3.58 against 1.31
      // per 1000); now 6.4–6.9 per 1000 for all three. (At surprise 2 and above the counts of 16 seeds are
      // too few to compare; bench/series-null.bench.ts has them, with more kinds.)
      const DAY = 24 * HOUR;
      const rates = [HOUR, 5 * MINUTE, MINUTE].map((step) => {
        const points = step === HOUR ? 1600 : 4000;
        let reports = 0;
        let scored = 0;
        for (let seed = 1; seed <= 16; seed++) {
          const rng = new Rng(seed);
          const sut = new SeriesDetector({ direction: 'both', missing: 'skip' });
          for (let i = 0; i < points; i++) {
            const t = T0 + (i + 1) * step;
            const weekend = Math.floor((t - T0) / DAY) % 7 >= 5 ? 0.6 : 1;
            const cycle = 1 + 0.5 * Math.sin((2 * Math.PI * (t % DAY)) / DAY);
            const r = sut.update(t, cycle * weekend * Math.exp(0.3 * coreGaussian(rng)));
            if (i < 0.15 * points) continue; // NAB's probationary period
            scored++;
            if (r.surprise >= 1.3) reports++;
          }
        }
        return (1000 * reports) / scored;
      });
      expect(Math.min(...rates)).toBeGreaterThan(0);
      expect(Math.max(...rates) / Math.min(...rates)).toBeLessThan(1.4);
    });

    it('should flag a level shift and stop alerting once it is the new normal', () => {
      const rng = new Rng(4);
      const values: number[] = [];
      for (let i = 0; i < 2 * 1440; i++) values.push(200 + 5 * gaussian(rng) + (i >= 1440 ? 60 : 0));
      const out = feed(new SeriesDetector(), values);
      expect(maxLikelihood(out, 1440, 1440 + 5)).toBeGreaterThan(0.999);
      // Six hours later the new level is normal.
      expect(maxLikelihood(out, 1440 + 6 * 60, 2 * 1440)).toBeLessThan(0.999);
    });

    it('should flag a traffic drop to zero (missing policy zero)', () => {
      const rng = new Rng(5);
      const values: number[] = [];
      for (let i = 0; i < 1440; i++) values.push(poisson(rng, 40));
      for (let i = 0; i < 30; i++) values.push(0);
      const out = feed(new SeriesDetector(seriesDefaultsFor('request_count')), values);
      expect(maxLikelihood(out, 1440, 1443)).toBeGreaterThan(0.999);
      expect(out[1440].direction).toBe('down');
      expect(out[1440].expected).toBeGreaterThan(20);
    });

    it('should treat a silent service (null minutes, or minutes never sent) as zeros of its traffic', () => {
      const rng = new Rng(6);
      const history: number[] = [];
      for (let i = 0; i < 1440; i++) history.push(poisson(rng, 40));
      const nulls = new SeriesDetector(seriesDefaultsFor('request_count'));
      feed(nulls, history);
      const silent = feed(nulls, [null, null, null], T0 + 1440 * MINUTE);
      expect(Math.max(...silent.map((r) => r.likelihood))).toBeGreaterThan(0.999);
      expect(silent.every((r) => r.missing === undefined)).toBe(true);

      const gaps = new SeriesDetector(seriesDefaultsFor('request_count'));
      feed(gaps, history);
      // The next point arrives 20 minutes late: 19 minutes without any.
      const back = gaps.update(T0 + (1440 + 19) * MINUTE, 40);
      expect(back.gap).toBe(19);
      expect(back.likelihood).toBeGreaterThan(0.999);
    });

    it('should skip missing minutes of a measurement without scoring or learning them', () => {
      const values: Array<number | null> = dailySeries(1, 7, 200, 0, 5);
      for (let i = 300; i < 1440; i += 7) values[i] = null;
      const sut = new SeriesDetector({ ...seriesDefaultsFor('latency_p95') });
      const out = feed(sut, values);
      for (let i = 300; i < 1440; i += 7) expect(out[i]).toEqual({ likelihood: 0, surprise: 0, missing: true });
      expect(maxLikelihood(out, 600, 1440)).toBeLessThan(0.9999);
      // A gap in the timestamps is counted, not filled.
      const after = sut.update(T0 + 1450 * MINUTE, 200);
      expect(after.gap).toBe(10);
      expect(after.likelihood).toBeLessThan(0.999);
      expect(sut.intervalMs).toBe(MINUTE);
    });

    it('should infer the sampling interval from the timestamps', () => {
      const sut = new SeriesDetector();
      feed(sut, dailySeries(1, 8).slice(0, 50), T0, 5 * MINUTE);
      expect(sut.intervalMs).toBe(5 * MINUTE);
    });

    it('should ignore drops of an upward (latency) detector and flag rises', () => {
      const rng = new Rng(9);
      const base: number[] = [];
      for (let i = 0; i < 1440; i++) base.push(250 + 10 * gaussian(rng));
      const up = new SeriesDetector({ ...seriesDefaultsFor('latency_p95') });
      const both = new SeriesDetector({ direction: 'both' });
      feed(up, base);
      feed(both, base);
      const t = T0 + 1440 * MINUTE;
      expect(up.update(t, 20).likelihood).toBeLessThan(0.5);
      expect(both.update(t, 20).likelihood).toBeGreaterThan(0.999);
      expect(up.update(t + 3 * HOUR, 900).likelihood).toBeGreaterThan(0.999);
    });

    it('should be causal: outputs do not change when future points are appended', () => {
      const values = dailySeries(2, 10);
      values[2000] += 50;
      const prefix = feed(new SeriesDetector(), values.slice(0, 1500));
      const full = feed(new SeriesDetector(), values);
      expect(full.slice(0, 1500)).toEqual(prefix);
    });

    it('should be deterministic', () => {
      const values = dailySeries(1, 11);
      expect(feed(new SeriesDetector(), values)).toEqual(feed(new SeriesDetector(), values));
    });

    it('should reject non-finite timestamps and values', () => {
      const sut = new SeriesDetector();
      sut.update(T0, 1);
      expect(() => sut.update(T0 + MINUTE, NaN)).toThrow(SeriesDetectorError);
      expect(() => sut.update(NaN, 1)).toThrow(SeriesDetectorError);
    });

    it('should score a repeated timestamp once', () => {
      const values = dailySeries(1, 13);
      const sut = new SeriesDetector();
      const reference = feed(new SeriesDetector(), values);
      const out = values.map((v, i) => {
        const r = sut.update(T0 + i * MINUTE, v);
        // Every tenth point is delivered twice, the second time with another value.
        if (i % 10 === 0)
          expect(sut.update(T0 + i * MINUTE, v + 500)).toEqual({ likelihood: 0, surprise: 0, repeated: true });
        return r;
      });
      expect(out).toEqual(reference);
    });

    it('should score a point that goes back in time without changing the state', () => {
      const values = dailySeries(2, 14);
      const reference = feed(new SeriesDetector(), values);
      const sut = new SeriesDetector();
      const late: SeriesResult[] = [];
      const out = values.map((v, i) => {
        const r = sut.update(T0 + i * MINUTE, v);
        // A clock set back by an hour replays the last hour once, with a spike in it.
        if (i === 1800)
          for (let k = 60; k >= 1; k--) late.push(sut.update(T0 + (i - k) * MINUTE, k === 30 ? v + 400 : v));
        return r;
      });
      expect(out).toEqual(reference);
      expect(late.every((r) => r.late === true)).toBe(true);
      expect(late[30].likelihood).toBeGreaterThan(0.999);
      expect(Math.max(...late.filter((_, k) => k !== 30).map((r) => r.likelihood))).toBeLessThan(0.999);
    });

    it('should count a long gap without filling it, even for a count', () => {
      const rng = new Rng(15);
      const history: number[] = [];
      for (let i = 0; i < 1440; i++) history.push(poisson(rng, 40));
      const sut = new SeriesDetector(seriesDefaultsFor('request_count'));
      feed(sut, history);
      const before = sut.pointCount;
      // The feed stops for a day (an outage of the pipeline, not of the service) and resumes.
      const back = sut.update(T0 + (2 * 1440 + 5) * MINUTE, 41);
      expect(back.gap).toBe(1440 + 5);
      expect(sut.pointCount).toBe(before + 1);
      expect(back.likelihood).toBeLessThan(0.999);
    });
  });

  describe('toJSON', () => {
    it('should restore a detector that continues with identical outputs', () => {
      const values = dailySeries(9, 12);
      values[8 * 1440 + 100] += 60;
      const reference = feed(new SeriesDetector(), values);
      let sut = new SeriesDetector();
      const restored: SeriesResult[] = [];
      values.forEach((v, i) => {
        // Restart (serialise through a JSON string) a few times, after the weekly profile exists too.
        if (i === 700 || i === 3000 || i === 8 * 1440) sut = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(sut)));
        restored.push(sut.update(T0 + i * MINUTE, v));
      });
      expect(restored).toEqual(reference);
    });

    it('should continue with identical outputs when restored at any point, also mid-bucket', () => {
      // The time-of-day window the discount reads is cached between points and rebuilt after a
      // restore: the rebuilt values must be the same to the last bit, wherever the restore falls.
      const values = dailySeries(4, 21, 100, 40, 8);
      for (let i = 2 * 1440; i < values.length; i += 211) values[i] += 50;
      const reference = feed(new SeriesDetector(), values, T0 + 7 * MINUTE);
      let sut = new SeriesDetector();
      const restored = values.map((v, i) => {
        if (i > 0 && i % 173 === 0) sut = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(sut)));
        return sut.update(T0 + 7 * MINUTE + i * MINUTE, v);
      });
      expect(restored.filter((r) => r.surprise > 0).length).toBeGreaterThan(20);
      expect(restored).toEqual(reference);
    });

    it('should keep the options and write a versioned format', () => {
      const sut = new SeriesDetector({ direction: 'up', missing: 'zero', intervalMs: MINUTE });
      const json = sut.toJSON();
      expect(json.format).toBe('series-detector');
      expect(json.version).toBe(2);
      expect(json.tuning).toBeUndefined();
      const back = SeriesDetector.fromJSON(json);
      expect(back.direction).toBe('up');
      expect(back.missing).toBe('zero');
      expect(back.intervalMs).toBe(MINUTE);
    });
  });

  describe('fromJSON', () => {
    it('should reject another format, an unknown version and damaged state', () => {
      const json = new SeriesDetector().toJSON();
      expect(() => SeriesDetector.fromJSON({ ...json, format: 'other' })).toThrow(SeriesDetectorError);
      expect(() => SeriesDetector.fromJSON({ ...json, version: 3 })).toThrow(/version/);
      expect(() => SeriesDetector.fromJSON({ ...json, state: 'AAAA' })).toThrow(SeriesDetectorError);
      expect(() => SeriesDetector.fromJSON({ ...json, state: json.state.slice(0, 40) })).toThrow(SeriesDetectorError);
      expect(() => SeriesDetector.fromJSON(null)).toThrow(SeriesDetectorError);
    });

    it('should refuse the JSON state of earlier builds (version 1) so the caller starts afresh', () => {
      const v1 = {
        format: 'series-detector',
        version: 1,
        options: {},
        tuning: {},
        state: { scalars: {}, arrays: {}, tails: [] },
      };
      expect(() => SeriesDetector.fromJSON(v1)).toThrow(/version 1/);
    });

    it('should keep tuning overrides, and only those', () => {
      const sut = new SeriesDetector({ tuning: { cooldown: 50 } });
      const json = JSON.parse(JSON.stringify(sut)) as SeriesDetectorJson;
      expect(json.tuning).toEqual({ cooldown: 50 });
      const values = dailySeries(1, 16);
      expect(feed(SeriesDetector.fromJSON(json), values)).toEqual(feed(sut, values));
    });

    it('should fit a live per-minute series with both seasonal profiles in 16 KB', () => {
      const sut = new SeriesDetector({ ...seriesDefaultsFor('request_count'), intervalMs: MINUTE });
      feed(sut, dailySeries(8, 17));
      expect(JSON.stringify(sut).length).toBeLessThanOrEqual(16 * 1024);
    });
  });
});

describe(seriesDefaultsFor.name, () => {
  it('should watch latency and error rate upwards and traffic both ways with silent minutes as zeros', () => {
    expect(seriesDefaultsFor('latency_p95')).toEqual({ direction: 'up', missing: 'skip' });
    expect(seriesDefaultsFor('error_rate')).toEqual({ direction: 'up', missing: 'skip' });
    expect(seriesDefaultsFor('request_count')).toEqual({ direction: 'both', missing: 'zero' });
  });
});
