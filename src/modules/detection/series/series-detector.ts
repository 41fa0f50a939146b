/**
 * Streaming anomaly detector for one time series (a per-minute count, error rate or latency
 * percentile of one service, or any regularly sampled metric such as a NAB file).
 *
 * Per point, in this order (so a point's output depends only on it and the past):
 * 1. Prediction. Several simple predictors forecast the point from the past: the last value,
 *    an EWMA level, the median of a short recent window, and additive Holt–Winters profiles for
 *    the daily and the weekly season once a season has been seen. The one with the lowest
 *    long-run absolute error is used; its recent mean absolute error is the scale.
 * 2. Evidence. The standardised error z of the point, and the mean of z over a short window
 *    (a level shift or a slow drift shows there before single points stand out), are each
 *    compared with their own learned distribution ({@link TailModel}): the surprise is −log10
 *    of the tail probability. Only the configured direction counts (an `up` detector ignores
 *    drops).
 * 3. Suppression. A point whose surprise does not exceed the (decaying) peak of recent
 *    surprises is damped, so an ongoing event is reported once and only an escalation is
 *    reported again.
 * 4. Learning. Predictors, error scales and tail models absorb the point: a new normal stops
 *    being surprising as the predictors and the error distribution adapt.
 *
 * `likelihood = 1 − 10^(−surprise)` in [0, 1]: 1 − the estimated probability of a deviation
 * at least this large under recent behaviour (Numenta's "anomaly likelihood" idea).
 *
 * State is fixed-size (a few kilobytes plus two seasonal profiles of at most a few thousand
 * buckets each), an update costs O(buckets of the tail histograms), and everything is
 * deterministic: the same inputs give the same outputs, also across toJSON/fromJSON.
 */
import { SeriesDetectorError } from './errors';
import { SeasonalProfile, SeasonalProfileJson } from './seasonal-profile';
import { fromBase64Into, TailModel, TailModelJson, TailModelOptions, toBase64 } from './tail-model';

/** Which deviations count: above expected, below, or both. */
export type SeriesDirection = 'up' | 'down' | 'both';

/**
 * What a missing point means: `zero` — nothing happened (counts: no events in that minute,
 * which is itself a data point, so a silent service drops to zero); `skip` — no measurement
 * (a latency with no requests): time advances, nothing is learned or scored.
 */
export type MissingPolicy = 'zero' | 'skip';

/** Tunables of the method. The defaults are one configuration for every series. */
export interface SeriesTuning {
  /** EWMA level predictor, weight of the newest point. */
  readonly ewmaAlpha: number;
  /** Points in the recent-median predictor. */
  readonly medianWindow: number;
  /** Holt–Winters level smoothing per point (seasonal predictors). */
  readonly seasonalAlpha: number;
  /** Holt–Winters seasonal smoothing per visit of a bucket. */
  readonly seasonalGamma: number;
  /** Most buckets of the daily and the weekly profile (fewer when points are sparser). */
  readonly dailyBuckets: number;
  readonly weeklyBuckets: number;
  /** A seasonal predictor is used once this fraction of its buckets has been seen. */
  readonly seasonalCoverage: number;
  /** Points of memory of the error scale (recent mean absolute error). */
  readonly scaleMemory: number;
  /** Points of memory of the mean squared error used to pick the predictor. */
  readonly selectMemory: number;
  /** Points of memory of the long-run error scale. */
  readonly longScaleMemory: number;
  /** The scale is at least this fraction of the long-run scale (a calm spell must not make every wiggle huge). */
  readonly longScaleFloor: number;
  /** Errors a predictor must have made before it can be picked. */
  readonly minErrors: number;
  /** An error enters the scale clipped to this many scales (a spike must not mask what follows). */
  readonly scaleClip: number;
  /** Points averaged for the short-mean evidence. */
  readonly shortWindow: number;
  /** Points averaged for the density evidence (mean point surprise). */
  readonly densityWindow: number;
  /** Points of memory of the value location and spread (level evidence). */
  readonly valueMemory: number;
  /** Weight of each evidence's surprise (point, short mean, level up, level down, density); 0 disables one. */
  readonly weights: readonly number[];
  readonly driftWindow: number;
  readonly holdSuppression: boolean;
  readonly suppressFloor: number;
  readonly recurrenceBuckets: number;
  readonly recurrenceSpan: number;
  readonly recurrenceHalfLife: number;
  readonly recurrenceDiscount: number;
  readonly learnGate: number;
  readonly anomalyLearnFactor: number;
  readonly novelWindow: number;
  readonly novelMemory: number;
  readonly novelStride: number;
  readonly novelK: number;
  readonly bucketSpread: boolean;
  readonly selectNll: boolean;
  /** Tail models of the evidence. */
  readonly tail: TailModelOptions;
  /** Prior weight (in points) of the standard-normal prior of each tail model. */
  readonly priorWeight: number;
  /** Points over which the suppression peak decays by a factor e. */
  readonly cooldown: number;
  /** Factor applied to a suppressed point's surprise. */
  readonly suppressedFactor: number;
  /** Largest number of missing points filled in one gap (policy `zero`); longer gaps are truncated. */
  readonly maxFill: number;
}

/** The one configuration used everywhere (NAB included). */
export const DEFAULT_TUNING: SeriesTuning = {
  ewmaAlpha: 0.2,
  medianWindow: 9,
  seasonalAlpha: 0.2,
  seasonalGamma: 0.25,
  dailyBuckets: 1440,
  weeklyBuckets: 2016,
  seasonalCoverage: 0.9,
  scaleMemory: 50,
  selectMemory: 300,
  longScaleMemory: 1000,
  longScaleFloor: 0.5,
  minErrors: 100,
  scaleClip: 6,
  shortWindow: 6,
  densityWindow: 12,
  bucketSpread: false,
  selectNll: false,
  valueMemory: 1000,
  weights: [0, 1, 1, 1, 1, 1, 1],
  driftWindow: 24,
  holdSuppression: true,
  suppressFloor: 0,
  recurrenceBuckets: 48,
  recurrenceSpan: 2,
  recurrenceHalfLife: 2 * 86_400_000,
  recurrenceDiscount: 1,
  learnGate: 3,
  anomalyLearnFactor: 1,
  novelWindow: 8,
  novelMemory: 256,
  novelStride: 2,
  novelK: 2,
  tail: { memory: 3000, tailFraction: 0.05, minTailWeight: 10 },
  priorWeight: 20,
  cooldown: 200,
  suppressedFactor: 0.5,
  maxFill: 1440,
};

/** Options of one {@link SeriesDetector}. */
export interface SeriesDetectorOptions {
  /** Deviations that count (default `both`). */
  readonly direction?: SeriesDirection;
  /** Meaning of a missing point (default `skip`). */
  readonly missing?: MissingPolicy;
  /** Sampling interval in ms; inferred from the timestamps (median of recent gaps) when absent. */
  readonly intervalMs?: number;
  /** Learn a daily season (default true). */
  readonly daily?: boolean;
  /** Learn a weekly season (default true). */
  readonly weekly?: boolean;
  /** Overrides of {@link DEFAULT_TUNING} (experiments; production uses the defaults). */
  readonly tuning?: Partial<SeriesTuning>;
}

/** Output for one point. */
export interface SeriesResult {
  /** Anomaly likelihood in [0, 1]: 1 − the probability of a deviation at least this large. */
  readonly likelihood: number;
  /** −log10(1 − likelihood), after suppression: unbounded, easier to read near 1 (3 ≈ 0.999). */
  readonly surprise: number;
  /** Value expected from the past (absent before there is any past, or for a skipped point). */
  readonly expected?: number;
  /** Side of the deviation from `expected`. */
  readonly direction?: 'up' | 'down';
  /** True for a missing point under policy `skip`: nothing was scored. */
  readonly missing?: boolean;
  /** Missing points before this one (a gap in the timestamps), filled according to the policy. */
  readonly gap?: number;
}

/** Per-metric defaults of SPEC §7: latency and errors up, traffic both ways; counts fill zeros. */
export function seriesDefaultsFor(metric: string): Pick<SeriesDetectorOptions, 'direction' | 'missing'> {
  if (metric === 'count' || metric === 'request_count' || metric === 'traffic')
    return { direction: 'both', missing: 'zero' };
  if (metric === 'error_rate' || metric.startsWith('latency')) return { direction: 'up', missing: 'skip' };
  return { direction: 'both', missing: 'skip' };
}

/** Serialised detector, see {@link SeriesDetector.toJSON}. JSON-safe. */
export interface SeriesDetectorJson {
  readonly format: 'series-detector';
  readonly version: 1;
  readonly options: {
    direction: SeriesDirection;
    missing: MissingPolicy;
    intervalMs: number | null;
    daily: boolean;
    weekly: boolean;
  };
  readonly tuning: SeriesTuning;
  readonly state: {
    /** Scalar state; NaN is written as null. */
    readonly scalars: Record<string, number | null>;
    /** Typed-array state, little-endian base64. */
    readonly arrays: Record<string, string>;
    readonly daily: SeasonalProfileJson | null;
    readonly weekly: SeasonalProfileJson | null;
    readonly tails: TailModelJson[];
  };
}

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** Predictor slots. */
const P_LAST = 0;
const P_EWMA = 1;
const P_MEDIAN = 2;
const P_DAILY = 3;
const P_WEEKLY = 4;
const PREDICTORS = 5;
/** Evidence slots: point error, short-mean error, value level above / below usual, density of surprises. */
const E_POINT = 0;
const E_MEAN = 1;
const E_LEVEL_UP = 2;
const E_LEVEL_DOWN = 3;
const E_DENSITY = 4;
const E_NOVELTY = 5;
const E_DRIFT = 6;
const EVIDENCE = 7;
/** Positive gaps kept for inferring the interval. */
const GAP_MEMORY = 7;
/** |N(0,1)| quantiles used as the tail models' prior. */
const PRIOR = halfNormalQuantiles(32);
/** σ ≈ 1.2533 × mean absolute deviation for a normal distribution. */
const MAE_TO_SD = Math.sqrt(Math.PI / 2);

/**
 * One series' streaming detector (see the file comment). Feed points in time order with
 * {@link update}; persist with {@link toJSON} and restore with {@link SeriesDetector.fromJSON}.
 */
export class SeriesDetector {
  readonly direction: SeriesDirection;
  readonly missing: MissingPolicy;
  private readonly fixedInterval: number | null;
  private readonly useDaily: boolean;
  private readonly useWeekly: boolean;
  private readonly tuning: SeriesTuning;

  private lastT: number | null = null;
  private interval: number | null = null;
  private readonly gaps = new Float64Array(GAP_MEMORY);
  private gapCount = 0;
  private points = 0;
  private last = NaN;
  private ewma = NaN;
  /** Ring of the last medianWindow values (oldest overwritten), and a sorted scratch copy. */
  private readonly recent: Float64Array;
  private readonly scratch: Float64Array;
  private readonly mae = new Float64Array(PREDICTORS);
  private readonly maeLong = new Float64Array(PREDICTORS);
  private readonly mse = new Float64Array(PREDICTORS);
  private readonly errors = new Float64Array(PREDICTORS);
  private readonly forecast = new Float64Array(PREDICTORS);
  private readonly scales = new Float64Array(PREDICTORS);
  private readonly evidence = new Float64Array(EVIDENCE);
  private readonly evidenceSurprise = new Float64Array(EVIDENCE);
  /** FIFO of past normalised windows (novelMemory × novelWindow), and how many were stored. */
  private readonly novelBank: Float32Array;
  private novelStored = 0;
  private readonly driftRing: Float64Array;
  private driftSum = 0;
  /** Time-of-day recurrence memory: per evidence and bucket, two (time, surprise) slots. */
  private readonly recurT: Float64Array;
  private readonly recurS: Float64Array;
  /** Raw surprise of the last scored point (before suppression), gates learning. */
  private lastRaw = 0;
  private readonly embedding: Float64Array;
  private readonly shortZ: Float64Array;
  private peak = 0;
  private peakAge = 0;
  private daily: SeasonalProfile | null = null;
  private weekly: SeasonalProfile | null = null;
  /** Recent point surprises (before suppression), for the density evidence. */
  private readonly recentSurprise: Float64Array;
  /** Slow location and mean absolute deviation of the values themselves, for the level evidence. */
  private valueCenter = NaN;
  private valueSpread = 0;
  /** Tail models of the evidence, indexed by the E_* constants. */
  private readonly tails: TailModel[];

  /** @throws SeriesDetectorError on invalid options. */
  constructor(options: SeriesDetectorOptions = {}) {
    this.direction = options.direction ?? 'both';
    this.missing = options.missing ?? 'skip';
    if (!['up', 'down', 'both'].includes(this.direction)) {
      throw new SeriesDetectorError(`direction must be up, down or both, got ${String(this.direction)}`);
    }
    if (!['zero', 'skip'].includes(this.missing)) {
      throw new SeriesDetectorError(`missing must be zero or skip, got ${String(this.missing)}`);
    }
    if (options.intervalMs !== undefined && !(options.intervalMs > 0 && Number.isFinite(options.intervalMs))) {
      throw new SeriesDetectorError(`intervalMs must be a positive number, got ${options.intervalMs}`);
    }
    this.fixedInterval = options.intervalMs ?? null;
    this.interval = this.fixedInterval;
    this.useDaily = options.daily ?? true;
    this.useWeekly = options.weekly ?? true;
    this.tuning = { ...DEFAULT_TUNING, ...options.tuning, tail: { ...DEFAULT_TUNING.tail, ...options.tuning?.tail } };
    const t = this.tuning;
    if (!(Number.isInteger(t.medianWindow) && t.medianWindow >= 1))
      throw new SeriesDetectorError('medianWindow must be a positive integer');
    if (!(Number.isInteger(t.shortWindow) && t.shortWindow >= 1))
      throw new SeriesDetectorError('shortWindow must be a positive integer');
    this.recent = new Float64Array(t.medianWindow);
    this.scratch = new Float64Array(t.medianWindow);
    this.shortZ = new Float64Array(t.shortWindow);
    this.recentSurprise = new Float64Array(t.densityWindow);
    this.novelBank = new Float32Array(t.novelMemory * t.novelWindow);
    this.driftRing = new Float64Array(t.driftWindow);
    this.recurT = new Float64Array(2 * EVIDENCE * t.recurrenceBuckets).fill(-Infinity);
    this.recurS = new Float64Array(2 * EVIDENCE * t.recurrenceBuckets);
    this.embedding = new Float64Array(t.novelWindow);
    if (this.recent.length < t.novelWindow) throw new SeriesDetectorError('medianWindow must be at least novelWindow');
    this.tails = [];
    for (let i = 0; i < EVIDENCE; i++) {
      const m = new TailModel(t.tail);
      m.seed(PRIOR, t.priorWeight / PRIOR.length);
      this.tails.push(m);
    }
  }

  /** Sampling interval in ms (given or inferred), or null before two timestamps were seen. */
  get intervalMs(): number | null {
    return this.interval;
  }

  /** Points learned so far (filled missing points included). */
  get pointCount(): number {
    return this.points;
  }

  /**
   * Score the point at `timestampMs` and learn it.
   *
   * `value` null (or undefined) is a missing point, handled by the missing policy. A gap in the
   * timestamps of more than 1.5 intervals is a run of missing points: under policy `zero` each
   * is learned as a 0 and the result's likelihood is the largest over the gap and this point
   * (a silence is reported at the first point after it at the latest); under `skip` the gap
   * is only counted. Equal timestamps are accepted as successive points.
   *
   * @throws SeriesDetectorError when the timestamp is not finite or goes back in time, or the
   *   value is not a finite number (nor null).
   */
  update(timestampMs: number, value: number | null | undefined): SeriesResult {
    if (!Number.isFinite(timestampMs))
      throw new SeriesDetectorError(`timestamp must be a finite number of ms, got ${timestampMs}`);
    if (value !== null && value !== undefined && !Number.isFinite(value)) {
      throw new SeriesDetectorError(`value must be a finite number or null, got ${value}`);
    }
    if (this.lastT !== null && timestampMs < this.lastT) {
      throw new SeriesDetectorError(
        `timestamp ${new Date(timestampMs).toISOString()} is before the previous point ${new Date(this.lastT).toISOString()}`,
      );
    }
    let gap = 0;
    let gapMax = 0;
    let gapResult: SeriesResult | null = null;
    if (this.lastT !== null) {
      const dt = timestampMs - this.lastT;
      if (this.interval !== null && dt > 1.5 * this.interval) {
        gap = Math.round(dt / this.interval) - 1;
        if (this.missing === 'zero') {
          const fill = Math.min(gap, this.tuning.maxFill);
          // The filled points sit at the end of the gap, on the grid that ends at this point.
          for (let i = fill; i >= 1; i--) {
            const r = this.step(timestampMs - i * this.interval, 0);
            if (r.likelihood > gapMax) {
              gapMax = r.likelihood;
              gapResult = r;
            }
          }
        }
      }
      if (dt > 0) this.learnGap(dt);
    }
    this.lastT = timestampMs;
    if (value === null || value === undefined) {
      if (this.missing === 'skip')
        return gap > 0
          ? { likelihood: 0, surprise: 0, missing: true, gap }
          : { likelihood: 0, surprise: 0, missing: true };
      value = 0;
    }
    const r = this.step(timestampMs, value);
    if (gap === 0) return r;
    return gapResult !== null && gapMax > r.likelihood ? { ...gapResult, gap } : { ...r, gap };
  }

  private learnGap(dt: number): void {
    this.gaps[this.gapCount % GAP_MEMORY] = dt;
    this.gapCount++;
    if (this.fixedInterval !== null) return;
    const n = Math.min(this.gapCount, GAP_MEMORY);
    const sorted = this.gaps.slice(0, n).sort();
    this.interval = sorted[(n - 1) >> 1];
  }

  /** Score then learn one (present or filled) point. */
  private step(t: number, x: number): SeriesResult {
    const tu = this.tuning;
    this.ensureProfiles();
    const f = this.forecast;
    const sc = this.scales;
    f.fill(NaN);
    const dailyBucket = this.daily ? this.daily.bucket(t) : -1;
    const weeklyBucket = this.weekly ? this.weekly.bucket(t) : -1;
    if (this.points > 0) {
      f[P_LAST] = this.last;
      f[P_EWMA] = this.ewma;
      f[P_MEDIAN] = this.median();
      if (this.daily && this.daily.coverage() >= tu.seasonalCoverage) f[P_DAILY] = this.daily.predict(dailyBucket);
      if (this.weekly && this.weekly.coverage() >= tu.seasonalCoverage) f[P_WEEKLY] = this.weekly.predict(weeklyBucket);
    }
    for (let k = 0; k < PREDICTORS; k++) {
      if (Number.isNaN(f[k])) continue;
      let s = this.mae[k];
      if (tu.bucketSpread && k === P_DAILY && this.daily!.spreadAt(dailyBucket) > 0)
        s = this.daily!.spreadAt(dailyBucket);
      if (tu.bucketSpread && k === P_WEEKLY && this.weekly!.spreadAt(weeklyBucket) > 0)
        s = this.weekly!.spreadAt(weeklyBucket);
      const floor = 1e-9 * Math.max(Math.abs(x), Math.abs(f[k])) + 1e-300;
      sc[k] = Math.max(s, tu.longScaleFloor * this.maeLong[k], floor);
    }
    // Pick the predictor with the best long-run log score among those with enough history.
    let best = -1;
    for (let k = 0; k < PREDICTORS; k++) {
      if (Number.isNaN(f[k]) || this.errors[k] < tu.minErrors) continue;
      if (best < 0 || this.mse[k] < this.mse[best]) best = k;
    }

    let result: SeriesResult;
    if (best < 0) {
      result = { likelihood: 0, surprise: 0 };
      this.lastRaw = 0;
      this.pushShort(0);
      this.recentSurprise[this.points % this.recentSurprise.length] = 0;
    } else {
      const expected = f[best];
      const e = x - expected;
      const z = e / (sc[best] * MAE_TO_SD);
      this.pushShort(z);
      let mean = 0;
      for (let i = 0; i < this.shortZ.length; i++) mean += this.shortZ[i];
      mean /= Math.sqrt(this.shortZ.length);
      const ev = this.evidence;
      ev[E_POINT] = this.directed(z);
      ev[E_MEAN] = this.directed(mean);
      const vs = Math.max(this.valueSpread, 1e-9 * Math.abs(this.valueCenter) + 1e-300);
      const dv = (x - this.valueCenter) / vs;
      ev[E_LEVEL_UP] = this.direction === 'down' ? 0 : Math.max(dv, 0);
      ev[E_LEVEL_DOWN] = this.direction === 'up' ? 0 : Math.max(-dv, 0);
      const pointSurprise = this.tails[E_POINT].surprise(ev[E_POINT]);
      this.recentSurprise[this.points % this.recentSurprise.length] = pointSurprise;
      let density = 0;
      for (let i = 0; i < this.recentSurprise.length; i++) density += this.recentSurprise[i];
      ev[E_DENSITY] = density / this.recentSurprise.length;
      ev[E_NOVELTY] = tu.weights[E_NOVELTY] > 0 ? this.novelty(x, vs) : 0;
      const dl = this.driftRing.length;
      const driftMean = (this.driftSum + x - this.driftRing[this.points % dl]) / Math.min(this.points + 1, dl);
      ev[E_DRIFT] = this.directed((driftMean - this.valueCenter) / vs);
      if ((this.direction === 'up' && e < 0) || (this.direction === 'down' && e > 0)) ev[E_NOVELTY] = 0;
      const es = this.evidenceSurprise;
      es[E_POINT] = pointSurprise * tu.weights[E_POINT];
      for (let i = 1; i < EVIDENCE; i++) es[i] = tu.weights[i] > 0 ? this.tails[i].surprise(ev[i]) * tu.weights[i] : 0;
      let s = 0;
      const rb = this.recurrenceBucket(t);
      for (let i = 0; i < EVIDENCE; i++) {
        const d = es[i] - tu.recurrenceDiscount * this.recurrence(i, rb, t);
        if (d > s) s = d;
        this.remember(i, rb, t, es[i]);
      }
      this.lastRaw = s;
      s = Math.max(0, s - Math.log10(EVIDENCE));
      for (let i = 0; i < EVIDENCE; i++) this.tails[i].add(ev[i]);
      const out = this.suppress(s);
      result = {
        likelihood: 1 - Math.pow(10, -out),
        surprise: out,
        expected,
        direction: e >= 0 ? 'up' : 'down',
      };
    }
    this.learn(x, f, sc, dailyBucket, weeklyBucket);
    return result;
  }

  /**
   * Distance from the window ending at `x` (values scaled by the value spread) to its nearest
   * past windows (mean of the novelK smallest), then store the window every novelStride points.
   */
  private novelty(x: number, spread: number): number {
    const tu = this.tuning;
    const w = tu.novelWindow;
    const emb = this.embedding;
    const r = this.recent;
    const rl = r.length;
    // recent holds the values before x; the newest is at (points − 1) % rl.
    emb[w - 1] = (x - this.valueCenter) / spread;
    for (let i = 1; i < w; i++) {
      const idx = this.points - i;
      emb[w - 1 - i] = idx >= 0 ? (r[((idx % rl) + rl) % rl] - this.valueCenter) / spread : 0;
    }
    const bank = this.novelBank;
    const M = tu.novelMemory;
    // Windows stored in the last w points overlap this one: leave them out.
    const skip = Math.ceil(w / tu.novelStride);
    const usable = Math.min(this.novelStored, M) - skip;
    let result = 0;
    if (usable >= tu.novelK) {
      let d1 = Infinity;
      let d2 = Infinity;
      for (let j = 0; j < usable; j++) {
        const slot = (this.novelStored - 1 - skip - j) % M;
        const base = slot * w;
        let d = 0;
        for (let i = 0; i < w; i++) {
          const q = emb[i] - bank[base + i];
          d += q * q;
          if (d >= d2) break;
        }
        if (d < d1) {
          d2 = d1;
          d1 = d;
        } else if (d < d2) d2 = d;
      }
      result = tu.novelK === 1 ? Math.sqrt(d1) : 0.5 * (Math.sqrt(d1) + Math.sqrt(d2));
    }
    if (this.points % tu.novelStride === 0) {
      bank.set(emb, (this.novelStored % M) * w);
      this.novelStored++;
    }
    return result;
  }

  private recurrenceBucket(t: number): number {
    const n = this.tuning.recurrenceBuckets;
    const phase = ((t % DAY_MS) + DAY_MS) % DAY_MS;
    return Math.min(n - 1, Math.floor((phase / DAY_MS) * n));
  }

  /**
   * Largest surprise of evidence `i` seen near this time of day on earlier days (at least half a
   * day ago), halved every recurrenceHalfLife ms: a spike every night at 2am is a schedule.
   */
  private recurrence(i: number, b: number, t: number): number {
    const tu = this.tuning;
    const n = tu.recurrenceBuckets;
    let m = 0;
    for (let k = -tu.recurrenceSpan; k <= tu.recurrenceSpan; k++) {
      const j = i * n + ((b + k + n) % n);
      for (let slot = 0; slot < 2; slot++) {
        const age = t - this.recurT[2 * j + slot];
        if (!(age >= DAY_MS / 2)) continue;
        const v = this.recurS[2 * j + slot] * Math.pow(2, -age / tu.recurrenceHalfLife);
        if (v > m) m = v;
      }
    }
    return m;
  }

  /**
   * Record surprise `s` of evidence `i` at bucket `b`. Two slots per bucket: the current day's
   * maximum and the previous one, so today's events never discount each other.
   */
  private remember(i: number, b: number, t: number, s: number): void {
    const j = 2 * (i * this.tuning.recurrenceBuckets + b);
    const rt = this.recurT;
    const rs = this.recurS;
    // Slot 0 holds the newest day's maximum; start a new day when it is half a day old.
    if (!(t - rt[j] < DAY_MS / 2)) {
      rt[j + 1] = rt[j];
      rs[j + 1] = rs[j];
      rt[j] = t;
      rs[j] = s;
    } else if (s > rs[j]) {
      rs[j] = s;
    }
  }

  private directed(z: number): number {
    if (this.direction === 'up') return z > 0 ? z : 0;
    if (this.direction === 'down') return z < 0 ? -z : 0;
    return Math.abs(z);
  }

  private pushShort(z: number): void {
    this.shortZ[this.points % this.shortZ.length] = z;
  }

  /**
   * Damp a point that does not exceed the peak of the last `cooldown` points: an ongoing event
   * is reported once, an escalation again. In `hold` mode the peak is forgotten `cooldown`
   * points after it was set; otherwise it decays by e every `cooldown` points.
   */
  private suppress(s: number): number {
    const tu = this.tuning;
    if (tu.holdSuppression) {
      this.peakAge++;
      if (s > this.peak || this.peakAge >= tu.cooldown) {
        if (s > this.peak || s > tu.suppressFloor) {
          this.peak = s;
          this.peakAge = 0;
        }
        return s;
      }
      return s * tu.suppressedFactor;
    }
    const decay = Math.exp(-1 / tu.cooldown);
    const before = this.peak;
    this.peak = Math.max(this.peak * decay, s);
    return s > before ? s : s * tu.suppressedFactor;
  }

  private learn(x: number, f: Float64Array, sc: Float64Array, dailyBucket: number, weeklyBucket: number): void {
    const tu = this.tuning;
    const rScale = 1 / tu.scaleMemory;
    const rSelect = 1 / tu.selectMemory;
    const rLong = 1 / tu.longScaleMemory;
    for (let k = 0; k < PREDICTORS; k++) {
      if (Number.isNaN(f[k])) continue;
      const err = Math.abs(x - f[k]);
      const n = this.errors[k];
      if (n === 0) {
        this.mae[k] = err;
        this.maeLong[k] = err;
        this.mse[k] = tu.selectNll ? Math.log(2 * sc[k]) + err / sc[k] : err * err;
      } else {
        const clipped = this.mae[k] > 0 ? Math.min(err, tu.scaleClip * this.mae[k]) : err;
        this.mae[k] += Math.max(rScale, 1 / (n + 1)) * (clipped - this.mae[k]);
        this.maeLong[k] += Math.max(rLong, 1 / (n + 1)) * (err - this.maeLong[k]);
        this.mse[k] +=
          Math.max(rSelect, 1 / (n + 1)) *
          ((tu.selectNll ? Math.log(2 * sc[k]) + err / sc[k] : err * err) - this.mse[k]);
      }
      this.errors[k] = n + 1;
    }
    if (this.points === 0) this.valueCenter = x;
    const rValue = Math.max(1 / tu.valueMemory, 1 / (this.points + 1));
    this.valueSpread += rValue * (Math.abs(x - this.valueCenter) - this.valueSpread);
    this.valueCenter += rValue * (x - this.valueCenter);
    const w = this.recent.length;
    this.recent[this.points % w] = x;
    const dl = this.driftRing.length;
    this.driftSum += x - this.driftRing[this.points % dl];
    this.driftRing[this.points % dl] = x;
    this.ewma = this.points === 0 ? x : this.ewma + tu.ewmaAlpha * (x - this.ewma);
    this.last = x;
    const g = this.lastRaw > tu.learnGate ? tu.anomalyLearnFactor : 1;
    if (this.daily)
      this.daily.update(dailyBucket, x, this.errors[P_DAILY] > 0 ? this.mae[P_DAILY] : this.mae[P_LAST], g);
    if (this.weekly)
      this.weekly.update(weeklyBucket, x, this.errors[P_WEEKLY] > 0 ? this.mae[P_WEEKLY] : this.mae[P_LAST], g);
    this.points++;
  }

  private median(): number {
    const n = Math.min(this.points, this.recent.length);
    const a = this.scratch.subarray(0, n);
    a.set(this.recent.subarray(0, n));
    a.sort();
    return n % 2 === 1 ? a[n >> 1] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
  }

  /** Create the seasonal profiles once the sampling interval is known. */
  private ensureProfiles(): void {
    if (this.interval === null) return;
    const tu = this.tuning;
    if (this.useDaily && !this.daily) {
      const buckets = Math.max(1, Math.min(tu.dailyBuckets, Math.round(DAY_MS / this.interval)));
      this.daily = new SeasonalProfile(DAY_MS, buckets, tu.seasonalAlpha, tu.seasonalGamma);
    }
    if (this.useWeekly && !this.weekly) {
      const buckets = Math.max(1, Math.min(tu.weeklyBuckets, Math.round(WEEK_MS / this.interval)));
      this.weekly = new SeasonalProfile(WEEK_MS, buckets, tu.seasonalAlpha, tu.seasonalGamma);
    }
  }

  /** Versioned, JSON-safe state; {@link SeriesDetector.fromJSON} restores a detector that continues identically. */
  toJSON(): SeriesDetectorJson {
    const scalars: Record<string, number | null> = {};
    for (const k of SCALARS) {
      const v = this[k];
      scalars[k] = v === null || Number.isNaN(v) ? null : v;
    }
    const arrays: Record<string, string> = {};
    for (const [k, a] of Object.entries(this.arrays())) arrays[k] = toBase64(a);
    return {
      format: 'series-detector',
      version: 1,
      options: {
        direction: this.direction,
        missing: this.missing,
        intervalMs: this.fixedInterval,
        daily: this.useDaily,
        weekly: this.useWeekly,
      },
      tuning: this.tuning,
      state: {
        scalars,
        arrays,
        daily: this.daily ? this.daily.toJSON() : null,
        weekly: this.weekly ? this.weekly.toJSON() : null,
        tails: this.tails.map((m) => m.toJSON()),
      },
    };
  }

  /** The typed-array state by name (sizes follow from the tuning, so a restore can check them). */
  private arrays(): Record<string, Float64Array | Float32Array> {
    return {
      gaps: this.gaps,
      recent: this.recent,
      mae: this.mae,
      maeLong: this.maeLong,
      mse: this.mse,
      errors: this.errors,
      shortZ: this.shortZ,
      recentSurprise: this.recentSurprise,
      driftRing: this.driftRing,
      recurT: this.recurT,
      recurS: this.recurS,
      novelBank: this.novelBank,
    };
  }

  /**
   * Restore a detector from {@link toJSON} output (also after JSON.stringify/parse).
   * @throws SeriesDetectorError on an unknown format or version, or inconsistent state.
   */
  static fromJSON(json: unknown): SeriesDetector {
    const j = json as SeriesDetectorJson;
    if (!j || typeof j !== 'object' || j.format !== 'series-detector') {
      throw new SeriesDetectorError('not a serialised series detector (format must be "series-detector")');
    }
    if (j.version !== 1)
      throw new SeriesDetectorError(`unsupported series detector version ${String(j.version)}, expected 1`);
    const o = j.options;
    const s = j.state;
    if (!o || !s || typeof s.scalars !== 'object' || typeof s.arrays !== 'object') {
      throw new SeriesDetectorError('series detector state: options and state are required');
    }
    const d = new SeriesDetector({
      direction: o.direction,
      missing: o.missing,
      intervalMs: o.intervalMs ?? undefined,
      daily: o.daily,
      weekly: o.weekly,
      tuning: j.tuning,
    });
    const scalars = d as unknown as Record<string, number | null>;
    for (const k of SCALARS) {
      const v = s.scalars[k];
      if (v !== null && typeof v !== 'number')
        throw new SeriesDetectorError(`series detector state: ${k} must be a number or null`);
      scalars[k] = v === null ? (k === 'lastT' || k === 'interval' ? null : NaN) : v;
    }
    for (const [k, a] of Object.entries(d.arrays())) fromBase64Into(s.arrays[k], a, `series detector state ${k}`);
    d.daily = s.daily ? SeasonalProfile.fromJSON(s.daily, d.tuning.seasonalAlpha, d.tuning.seasonalGamma) : null;
    d.weekly = s.weekly ? SeasonalProfile.fromJSON(s.weekly, d.tuning.seasonalAlpha, d.tuning.seasonalGamma) : null;
    if (!Array.isArray(s.tails) || s.tails.length !== EVIDENCE) {
      throw new SeriesDetectorError(`series detector state: tails must be ${EVIDENCE} tail models`);
    }
    s.tails.forEach((t, i) => (d.tails[i] = TailModel.fromJSON(t, d.tuning.tail)));
    return d;
  }
}

/** Scalar state fields, serialised by name. */
const SCALARS = [
  'lastT',
  'interval',
  'gapCount',
  'points',
  'last',
  'ewma',
  'peak',
  'peakAge',
  'lastRaw',
  'valueCenter',
  'valueSpread',
  'novelStored',
  'driftSum',
] as const;

/** Quantiles of |N(0,1)| at (i + 0.5)/n, i = 0..n−1. */
function halfNormalQuantiles(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = normalQuantile(0.5 + (0.5 * (i + 0.5)) / n);
  return out;
}

/** Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}
