/**
 * Streaming anomaly detector for one time series: a per-minute request count, error rate or
 * latency percentile of one service, or any regularly sampled metric (a NAB file).
 *
 * Per point, in this order, so that a point's output depends only on it and the past:
 *
 * 1. Prediction. Simple predictors forecast the point from the past: the last value, an EWMA,
 *    the median of the last few points, and daily and weekly seasonal profiles once a day or a
 *    week has been seen ({@link SeasonalProfile}). The one with the lowest recent mean squared
 *    error gives `expected`; its recent mean absolute error (every error as it is: a spike
 *    widens the scale for the points after it) is the scale of the error z.
 * 2. Evidence, each a non-negative statistic in the configured direction (an `up` detector
 *    ignores drops):
 *    - `point`: |z| of this point;
 *    - `shift`: the mean of z over the last few points (a level shift or the start of a slow
 *      rise shows there before any single point stands out);
 *    - `level`: how far the value itself is from its usual range (a value never seen before is
 *      an anomaly even where the predictors follow it, e.g. the first point of a jump);
 *    - `drift`: the mean of the last few values against the usual range;
 *    - `record`: how far the value goes beyond the highest (lowest) value ever seen, relative
 *      to that range (a new extreme: the "spatial anomaly" of Numenta's NAB detector). Letting
 *      the remembered extremes relax towards the usual level, as before, made new extremes
 *      recur in plain noise at a rate set by the relaxation constant rather than by the data
 *      (see docs/benchmarks.md).
 *    Each is compared with its own learned distribution ({@link TailModel}); its surprise is
 *    −log10 of the estimated tail probability. The point's surprise is the largest of them,
 *    less log10 of the number of evidences (they are several looks at one point), and less
 *    what the same evidence reached at the same time of day on the two previous days beyond
 *    what that many points reach anyway (a job that spikes every night is a schedule, not an
 *    incident; the largest of L tail probabilities is about 1/(L + 1) in plain noise, so only
 *    the excess over log10(L + 1) recurs). Counting the points (L) makes the discount the same
 *    at every sampling interval: subtracting the whole remembered peak, as up to issue 14's
 *    third session, discounted a 5-minute series (60 points in the window) about 1 more than
 *    an hourly one (5), and one threshold gave 2.5–3.5 times the false alarms on hourly series
 *    (docs/benchmarks.md, "Calibration on series without anomalies").
 * 3. Suppression. A point that does not exceed the peak of the last `cooldown` points scores 0:
 *    an ongoing event is reported once, an escalation again. (Damping such points to 0.3 of
 *    their surprise instead, as before, gave the same NAB scores: none of them ever counted.)
 * 4. Learning. Predictors, scales, value range and tail models absorb the point, so a new
 *    normal (a level shift that stays) stops being surprising.
 *
 * `likelihood = 1 − 10^(−surprise)`, in [0, 1]: one minus the estimated probability of
 * evidence at least this strong under the series' recent behaviour (the "anomaly likelihood"
 * of Numenta's HTM detector, computed here from learned tail distributions instead of a
 * Gaussian). On normal series of many kinds, likelihood 0.9956 (NAB's standard threshold for
 * this build) gives about 0.2–2 reports per 1000 points (bench/series-null.bench.ts).
 *
 * Warm-up: points are scored from the `warmup`-th on (the last-value predictor stands in until
 * a predictor has `minErrors` errors); the evidence distributions start from a standard-normal
 * prior and learn only errors scaled by a predictor with a track record.
 *
 * Missing points: `update(t, null)` or a gap in the timestamps. Under policy `zero` (counts)
 * they are points of value 0, learned and scored, so a service that goes silent is a drop of
 * its traffic; under `skip` (measurements: a latency with no requests) time advances and
 * nothing is learned or scored. The sampling interval is inferred from the timestamps (median
 * of the last gaps) unless given.
 *
 * State is fixed-size: two seasonal profiles of at most `dailyBuckets` and `weeklyBuckets`
 * floats, one small histogram per evidence, short rings. An update costs a few thousand
 * floating-point operations whatever the history. Deterministic: the same inputs give the same
 * outputs, also across {@link SeriesDetector.toJSON} / {@link SeriesDetector.fromJSON}.
 */
import { SeriesDetectorError } from './errors';
import { SeasonalProfile } from './seasonal-profile';
import { StateReader, StateWriter } from './state-codec';
import { TailModel, TailModelOptions } from './tail-model';

/** Which deviations count: above expected, below, or both. */
export type SeriesDirection = 'up' | 'down' | 'both';

/**
 * What a missing point means: `zero` — nothing happened (a count: no events in that minute),
 * so it is a point of value 0; `skip` — nothing was measured (a latency without requests):
 * time advances, nothing is learned or scored.
 */
export type MissingPolicy = 'zero' | 'skip';

/** The evidence that made a point surprising (see the file comment). */
export type SeriesEvidence = 'point' | 'shift' | 'level' | 'drift' | 'record';

/** Tunables of the method. {@link DEFAULT_TUNING} is the one configuration used everywhere. */
export interface SeriesTuning {
  /** EWMA predictor: weight of the newest point. */
  readonly ewmaAlpha: number;
  /** Points in the recent-median predictor. */
  readonly medianWindow: number;
  /** Seasonal predictors: smoothing per point of the offset from the profile. */
  readonly seasonalAlpha: number;
  /** Seasonal predictors: smoothing of a bucket per visit (per day or per week). */
  readonly seasonalGamma: number;
  /** Most buckets of the daily profile (fewer when points are sparser). */
  readonly dailyBuckets: number;
  /** Most buckets of the weekly profile. */
  readonly weeklyBuckets: number;
  /** A seasonal predictor competes once this fraction of its buckets has been seen. */
  readonly seasonalCoverage: number;
  /** Points of memory of the error scale (recent mean absolute error of each predictor). */
  readonly scaleMemory: number;
  /** Points of memory of the long-run mean absolute error. */
  readonly longScaleMemory: number;
  /** The scale is at least this fraction of the long-run one (a calm spell must not make every wiggle huge). */
  readonly longScaleFloor: number;
  /** Points of memory of the mean squared error that picks the predictor. */
  readonly selectMemory: number;
  /** Errors a predictor must have made before it can be picked. */
  readonly minErrors: number;
  /** Points after which the last-value predictor stands in until one has `minErrors`. */
  readonly warmup: number;
  /** Points averaged by the shift evidence. */
  readonly shortWindow: number;
  /** Points averaged by the drift evidence. */
  readonly driftWindow: number;
  /** Points of memory of the usual value range (level and drift evidence). */
  readonly valueMemory: number;
  /** Weight of each evidence's surprise: point, shift, level up, level down, drift, record. */
  readonly weights: readonly number[];
  /** Tail models of the evidence. */
  readonly tail: TailModelOptions;
  /** Weight, in points, of the standard-normal prior each tail model starts with. */
  readonly priorWeight: number;
  /** Time-of-day buckets remembering the surprise of each evidence on earlier days. */
  readonly recurrenceBuckets: number;
  /** Buckets either side that also count as the same time of day (jobs do not run to the minute). */
  readonly recurrenceSpan: number;
  /** Half-life, in ms, of a remembered surprise. */
  readonly recurrenceHalfLife: number;
  /** Points during which a reported peak damps anything not exceeding it. */
  readonly cooldown: number;
  /** Longest gap, in points, filled with zeros (policy `zero`); a longer gap is a gap: nothing is made up. */
  readonly maxFill: number;
}

/** The one configuration used for every series (live metrics and NAB alike). */
export const DEFAULT_TUNING: SeriesTuning = {
  ewmaAlpha: 0.2,
  medianWindow: 9,
  seasonalAlpha: 0.2,
  seasonalGamma: 0.25,
  dailyBuckets: 288,
  weeklyBuckets: 1008,
  seasonalCoverage: 0.9,
  scaleMemory: 50,
  longScaleMemory: 1000,
  longScaleFloor: 0.5,
  selectMemory: 300,
  minErrors: 100,
  warmup: 30,
  shortWindow: 6,
  driftWindow: 12,
  valueMemory: 2000,
  weights: [0.5, 1, 1, 1, 1, 1],
  tail: { memory: 3000, tailFraction: 0.05, minTailWeight: 10, maxShape: 0.5 },
  priorWeight: 12,
  recurrenceBuckets: 48,
  recurrenceSpan: 2,
  recurrenceHalfLife: 2 * 86_400_000,
  cooldown: 200,
  maxFill: 60,
};

/** Options of one {@link SeriesDetector}. */
export interface SeriesDetectorOptions {
  /** Deviations that count (default `both`). */
  readonly direction?: SeriesDirection;
  /** Meaning of a missing point (default `skip`). */
  readonly missing?: MissingPolicy;
  /** Sampling interval in ms; inferred from the timestamps when absent. */
  readonly intervalMs?: number;
  /** Learn a daily season (default true). */
  readonly daily?: boolean;
  /** Learn a weekly season (default true). */
  readonly weekly?: boolean;
  /** Overrides of {@link DEFAULT_TUNING}, for experiments; production uses the defaults. */
  readonly tuning?: Partial<SeriesTuning>;
}

/** Output for one point. */
export interface SeriesResult {
  /** Anomaly likelihood in [0, 1] (after suppression). */
  readonly likelihood: number;
  /** The same on an open scale: −log10(1 − likelihood); 4 ≈ 0.9999. */
  readonly surprise: number;
  /** Value expected from the past (absent during the warm-up and for skipped points). */
  readonly expected?: number;
  /** Side of the value relative to `expected`. */
  readonly direction?: 'up' | 'down';
  /** The strongest evidence (absent when the surprise is 0). */
  readonly reason?: SeriesEvidence;
  /** True for a missing point under policy `skip`: nothing was scored. */
  readonly missing?: boolean;
  /** Missing points between the previous point and this one (a gap in the timestamps). */
  readonly gap?: number;
  /** The timestamp equals the previous point's: already scored, nothing scored or learned. */
  readonly repeated?: boolean;
  /** The timestamp is before the previous point's: scored against the current state, not learned. */
  readonly late?: boolean;
}

/**
 * Detector options for a live metric, per SPEC §7: latency and error rate count upwards only,
 * traffic both ways with a minute without events counted as 0.
 */
export function seriesDefaultsFor(metric: string): Pick<SeriesDetectorOptions, 'direction' | 'missing'> {
  if (metric === 'request_count' || metric === 'count' || metric === 'traffic') {
    return { direction: 'both', missing: 'zero' };
  }
  if (metric === 'error_rate' || metric.startsWith('latency')) return { direction: 'up', missing: 'skip' };
  return { direction: 'both', missing: 'skip' };
}

/**
 * Serialised detector, see {@link SeriesDetector.toJSON}. JSON-safe and compact: the numeric
 * state is one deflated binary string (see state-codec.ts), a few KB per series.
 */
export interface SeriesDetectorJson {
  readonly format: 'series-detector';
  readonly version: 2;
  readonly options: {
    readonly direction: SeriesDirection;
    readonly missing: MissingPolicy;
    readonly intervalMs: number | null;
    readonly daily: boolean;
    readonly weekly: boolean;
  };
  /** Tuning that differs from {@link DEFAULT_TUNING} (array sizes depend on it); absent when none. */
  readonly tuning?: Partial<SeriesTuning>;
  /** Numeric state: deflated little-endian binary, base64. */
  readonly state: string;
}

/** Version of {@link SeriesDetectorJson} this build writes and reads. */
const STATE_VERSION = 2;

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** Predictor slots. */
const P_LAST = 0;
const P_EWMA = 1;
const P_MEDIAN = 2;
const P_DAILY = 3;
const P_WEEKLY = 4;
const PREDICTORS = 5;

/** Evidence slots (level has one per side, so each side learns its own tail). */
const E_POINT = 0;
const E_SHIFT = 1;
const E_LEVEL_UP = 2;
const E_LEVEL_DOWN = 3;
const E_DRIFT = 4;
const E_RECORD = 5;
const EVIDENCE = 6;
const EVIDENCE_NAMES: readonly SeriesEvidence[] = ['point', 'shift', 'level', 'level', 'drift', 'record'];
/** Several looks at one point: the smallest of EVIDENCE tail probabilities is that much less rare. */
const MULTIPLICITY = Math.log10(EVIDENCE);

/** Positive gaps kept for inferring the interval. */
const GAP_MEMORY = 7;
/** Gaps seen before the seasonal profiles are sized from the inferred interval. */
const PROFILE_GAPS = 3;
/** σ ≈ 1.2533 × mean absolute deviation for a normal distribution. */
const MAE_TO_SD = Math.sqrt(Math.PI / 2);
/** Quantiles of |N(0,1)|: the tail models' prior before any data. */
const PRIOR = halfNormalQuantiles(32);

/** Scalar state, serialised by name. */
const SCALARS = [
  'lastT',
  'interval',
  'gapCount',
  'points',
  'last',
  'ewma',
  'valueCenter',
  'valueSpread',
  'hi',
  'lo',
  'driftSum',
  'peak',
  'peakAge',
] as const;

/**
 * One series' streaming detector (see the file comment). Feed points in time order with
 * {@link update}; persist with {@link toJSON} and restore with {@link SeriesDetector.fromJSON}.
 * Not safe for concurrent use; one instance per series.
 */
export class SeriesDetector {
  /** Deviations that count. */
  readonly direction: SeriesDirection;
  /** Meaning of a missing point. */
  readonly missing: MissingPolicy;
  private readonly fixedInterval: number | null;
  private readonly useDaily: boolean;
  private readonly useWeekly: boolean;
  private readonly tuning: SeriesTuning;

  // Time.
  private lastT: number | null = null;
  private interval: number | null = null;
  private readonly gaps = new Float64Array(GAP_MEMORY);
  private gapCount = 0;
  private points = 0;

  // Predictors and their errors.
  private last = NaN;
  private ewma = NaN;
  /** Last medianWindow values, a ring indexed by points % length. */
  private readonly recent: Float64Array;
  private readonly mae = new Float64Array(PREDICTORS);
  private readonly maeLong = new Float64Array(PREDICTORS);
  private readonly mse = new Float64Array(PREDICTORS);
  private readonly errors = new Float64Array(PREDICTORS);
  private daily: SeasonalProfile | null = null;
  private weekly: SeasonalProfile | null = null;

  // Evidence.
  private readonly shortZ: Float64Array;
  private readonly driftRing: Float64Array;
  private driftSum = 0;
  private valueCenter = NaN;
  private valueSpread = 0;
  /** Highest and lowest values ever seen (the record evidence's reference). */
  private hi = NaN;
  private lo = NaN;
  private readonly tails: TailModel[] = [];

  /**
   * Time-of-day memory: per bucket, the start times of its two slots (the newest day and the
   * one before; the same for every evidence, which all record at each point), and per evidence
   * and bucket the peak surprise of each slot.
   */
  private readonly recurT: Float64Array;
  private readonly recurS: Float32Array;

  // Suppression.
  private peak = 0;
  private peakAge = 0;

  // Scratch, not state.
  private readonly forecast = new Float64Array(PREDICTORS);
  private readonly scales = new Float64Array(PREDICTORS);
  private readonly evidence = new Float64Array(EVIDENCE);
  private readonly scratch: Float64Array;
  /**
   * The time-of-day window {@link prepareRecurrence} last read (not state; rebuilt when stale):
   * its bucket and sampling interval, the reference time, the time a slot of today comes of
   * age, the largest peak per evidence and the expected peak at the reference time, and the
   * decay since.
   */
  private recurBucket = -1;
  private recurInterval: number | null = null;
  private recurStale = true;
  private recurRef = 0;
  private recurUntil = -Infinity;
  private readonly recurMax = new Float64Array(EVIDENCE);
  private recurExpected = 0;
  private recurNow = 1;

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
    const t: SeriesTuning = {
      ...DEFAULT_TUNING,
      ...options.tuning,
      tail: { ...DEFAULT_TUNING.tail, ...options.tuning?.tail },
    };
    this.tuning = t;
    for (const k of ['medianWindow', 'shortWindow', 'driftWindow', 'recurrenceBuckets'] as const) {
      if (!(Number.isInteger(t[k]) && t[k] >= 1)) throw new SeriesDetectorError(`${k} must be a positive integer`);
    }
    if (!(Array.isArray(t.weights) && t.weights.length === EVIDENCE)) {
      throw new SeriesDetectorError(`weights must have ${EVIDENCE} entries`);
    }
    this.recent = new Float64Array(t.medianWindow);
    this.scratch = new Float64Array(t.medianWindow);
    this.shortZ = new Float64Array(t.shortWindow);

    this.driftRing = new Float64Array(t.driftWindow);
    this.recurT = new Float64Array(2 * t.recurrenceBuckets).fill(-Infinity);
    this.recurS = new Float32Array(2 * EVIDENCE * t.recurrenceBuckets);
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
   * Score the point at `timestampMs` (ms since the epoch) and learn it.
   *
   * `value` null or undefined is a missing point, handled by the missing policy. A gap of more
   * than 1.5 intervals since the previous point is a run of missing points: under policy
   * `zero` a gap of at most `maxFill` points is learned and scored as zeros and the result is
   * the most surprising of the gap and this point, so a silence is reported by the next point at
   * the latest; a longer gap (and any gap under `skip`) is only counted: time moves on, nothing
   * is made up.
   *
   * Real feeds are not always in order. A point with the previous point's timestamp is a
   * repetition: answered `repeated` with likelihood 0, not scored or learned again. A point
   * before the previous one (a clock set back, a late delivery) is scored against the current
   * state and marked `late`, and the state is left exactly as it was.
   *
   * @throws SeriesDetectorError when the timestamp is not finite or the value is neither a
   *   finite number nor null.
   */
  update(timestampMs: number, value: number | null | undefined): SeriesResult {
    if (!Number.isFinite(timestampMs)) {
      throw new SeriesDetectorError(`timestamp must be a finite number of ms, got ${timestampMs}`);
    }
    if (value !== null && value !== undefined && !Number.isFinite(value)) {
      throw new SeriesDetectorError(`value must be a finite number or null, got ${value}`);
    }
    if (this.lastT !== null && timestampMs <= this.lastT) {
      if (timestampMs === this.lastT) return { likelihood: 0, surprise: 0, repeated: true };
      return this.scoreLate(timestampMs, value);
    }
    let gap = 0;
    let worst: SeriesResult | null = null;
    if (this.lastT !== null) {
      const dt = timestampMs - this.lastT;
      if (this.interval !== null && dt > 1.5 * this.interval) {
        gap = Math.round(dt / this.interval) - 1;
        if (this.missing === 'zero' && gap <= this.tuning.maxFill) {
          // The filled points sit on the grid that ends at this point.
          for (let i = gap; i >= 1; i--) {
            const r = this.step(timestampMs - i * this.interval, 0);
            if (worst === null || r.surprise > worst.surprise) worst = r;
          }
        }
      }
      this.learnGap(dt);
    }
    this.lastT = timestampMs;
    if (value === null || value === undefined) {
      if (this.missing === 'skip') {
        return gap > 0
          ? { likelihood: 0, surprise: 0, missing: true, gap }
          : { likelihood: 0, surprise: 0, missing: true };
      }
      value = 0;
    }
    const r = this.step(timestampMs, value);
    if (gap === 0) return r;
    return worst !== null && worst.surprise > r.surprise ? { ...worst, gap } : { ...r, gap };
  }

  /** A point older than the last one: scored as if it came next, then the state is put back. */
  private scoreLate(t: number, value: number | null | undefined): SeriesResult {
    if (value === null || value === undefined) {
      if (this.missing === 'skip') return { likelihood: 0, surprise: 0, missing: true, late: true };
      value = 0;
    }
    const w = new StateWriter();
    this.writeState(w);
    // Time goes back: the cached time-of-day window may hold a slot not yet of age at `t`.
    this.recurStale = true;
    const r = this.step(t, value);
    this.readState(new StateReader(w.bytes(), 'series detector snapshot'));
    return { ...r, late: true };
  }

  private learnGap(dt: number): void {
    this.gaps[this.gapCount % GAP_MEMORY] = dt;
    this.gapCount++;
    if (this.fixedInterval !== null) return;
    const n = Math.min(this.gapCount, GAP_MEMORY);
    const sorted = this.gaps.slice(0, n).sort();
    this.interval = sorted[(n - 1) >> 1];
  }

  /** Score, then learn, one present or filled point. */
  private step(t: number, x: number): SeriesResult {
    const tu = this.tuning;
    this.ensureProfiles();
    const dailyBucket = this.daily ? this.daily.bucket(t) : -1;
    const weeklyBucket = this.weekly ? this.weekly.bucket(t) : -1;
    const f = this.forecast;
    f.fill(NaN);
    if (this.points > 0) {
      f[P_LAST] = this.last;
      f[P_EWMA] = this.ewma;
      f[P_MEDIAN] = this.median();
      if (this.daily && this.daily.coverage() >= tu.seasonalCoverage) f[P_DAILY] = this.daily.predict(dailyBucket);
      if (this.weekly && this.weekly.coverage() >= tu.seasonalCoverage) f[P_WEEKLY] = this.weekly.predict(weeklyBucket);
    }
    let best = -1;
    for (let k = 0; k < PREDICTORS; k++) {
      if (Number.isNaN(f[k])) continue;
      const floor = 1e-9 * Math.max(Math.abs(x), Math.abs(f[k])) + 1e-300;
      this.scales[k] = Math.max(this.mae[k], tu.longScaleFloor * this.maeLong[k], floor) * MAE_TO_SD;
      if (this.errors[k] >= tu.minErrors && (best < 0 || this.mse[k] < this.mse[best])) best = k;
    }
    // Until a predictor has a track record, the one with the longest history stands in.
    if (best < 0 && this.errors[P_LAST] >= tu.warmup) best = P_LAST;

    let result: SeriesResult;
    if (best < 0) {
      result = { likelihood: 0, surprise: 0 };
    } else {
      const expected = f[best];
      const e = x - expected;
      const surprise = this.score(t, x, e / this.scales[best], this.errors[best] >= tu.minErrors);
      const reason = this.strongest();
      result = {
        likelihood: 1 - Math.pow(10, -surprise),
        surprise,
        expected,
        direction: e >= 0 ? 'up' : 'down',
        ...(surprise > 0 && reason !== null ? { reason } : {}),
      };
    }
    this.learn(x, best < 0 ? 0 : (x - f[best]) / this.scales[best], dailyBucket, weeklyBucket);
    return result;
  }

  /** Evidence → surprise (discounted by recurrence, zeroed by suppression); also learns the tails. */
  private score(t: number, x: number, z: number, mature: boolean): number {
    const tu = this.tuning;
    const ev = this.evidence;
    const n = this.points;
    // Rings hold the previous points; this point enters them in learn().
    let shift = z;
    for (let i = 0; i < this.shortZ.length; i++) if (i !== n % this.shortZ.length) shift += this.shortZ[i];
    const spread = Math.max(this.valueSpread, 1e-9 * Math.abs(this.valueCenter) + 1e-300);
    const dv = (x - this.valueCenter) / spread;
    const dl = this.driftRing.length;
    const driftMean = (this.driftSum + x - this.driftRing[n % dl]) / Math.min(n + 1, dl);
    ev[E_POINT] = this.directed(z);
    ev[E_SHIFT] = this.directed(shift / Math.sqrt(Math.min(n + 1, this.shortZ.length)));
    ev[E_LEVEL_UP] = this.direction === 'down' ? 0 : Math.max(dv, 0);
    ev[E_LEVEL_DOWN] = this.direction === 'up' ? 0 : Math.max(-dv, 0);
    ev[E_DRIFT] = this.directed((driftMean - this.valueCenter) / spread);
    // Beyond the highest (lowest) value of the last weeks, as a fraction of that range.
    const range = Math.max(this.hi - this.lo, spread);
    ev[E_RECORD] = Math.max(
      this.direction === 'down' ? 0 : (x - this.hi) / range,
      this.direction === 'up' ? 0 : (this.lo - x) / range,
      0,
    );

    const es = this.evidenceSurprise;
    const raw = this.rawSurprise;
    for (let i = 0; i < EVIDENCE; i++) {
      raw[i] = tu.weights[i] > 0 ? this.tails[i].surprise(ev[i]) * tu.weights[i] : 0;
    }
    const bucket = this.recurrenceBucket(t);
    // The same time of day's peak is the largest of `looks` surprises, so under no recurrence it
    // is already about log10(looks + 1) (halved like the peaks themselves): only its excess over
    // that is a recurrence. Subtracting the whole peak made the discount grow with the points per
    // time-of-day bucket, so one threshold meant fewer false alarms on 5-minute than on hourly
    // series. The result can exceed the raw surprise by at most that much: it is computed only
    // where it could still be the largest one above the multiplicity correction.
    const expectedPeak = this.prepareRecurrence(bucket, t);
    let s = MULTIPLICITY;
    for (let i = 0; i < EVIDENCE; i++) {
      es[i] = 0;
      if (raw[i] + expectedPeak > s) {
        es[i] = raw[i] - this.recurrence(i) + expectedPeak;
        if (es[i] > s) s = es[i];
      }
    }
    if (mature) {
      // Errors scaled by a predictor without a track record are not learned as normal.
      this.remember(bucket, t, raw);
      for (let i = 0; i < EVIDENCE; i++) this.tails[i].add(ev[i]);
    }
    return this.suppress(Math.max(0, s - MULTIPLICITY));
  }

  /** Surprise of each evidence at the last scored point, raw and discounted (0 where not needed). */
  private readonly rawSurprise = new Float64Array(EVIDENCE);
  private readonly evidenceSurprise = new Float64Array(EVIDENCE);

  private strongest(): SeriesEvidence | null {
    let k = -1;
    for (let i = 0; i < EVIDENCE; i++)
      if (this.evidenceSurprise[i] > 0 && (k < 0 || this.evidenceSurprise[i] > this.evidenceSurprise[k])) k = i;
    return k < 0 ? null : EVIDENCE_NAMES[k];
  }

  private directed(z: number): number {
    if (this.direction === 'up') return z > 0 ? z : 0;
    if (this.direction === 'down') return z < 0 ? -z : 0;
    return Math.abs(z);
  }

  private recurrenceBucket(t: number): number {
    const n = this.tuning.recurrenceBuckets;
    const phase = ((t % DAY_MS) + DAY_MS) % DAY_MS;
    return Math.min(n - 1, Math.floor((phase / DAY_MS) * n));
  }

  /**
   * The largest surprise evidence `i` reached near this time of day on earlier days (half a
   * day ago or more, so an ongoing event never discounts itself), halved every
   * `recurrenceHalfLife`, over the slots {@link prepareRecurrence} chose for this point.
   */
  private recurrence(i: number): number {
    return this.recurNow * this.recurMax[i];
  }

  /**
   * Choose the slots {@link recurrence} reads at time `t`: the window's slots that hold an earlier
   * day. Returns what it returns where nothing recurs: those peaks are the largest of `looks`
   * surprises, `looks` = slots × the points a bucket holds at the sampling interval (at least
   * one: a slot is filled by a point), and the largest of that many tail probabilities is about
   * 1/(looks + 1), so the peak is about log10(looks + 1), halved with the age of the slots as the
   * peaks are. 0 while no earlier day is remembered.
   *
   * Every slot decays at the same rate, so which decayed peak is largest does not change with
   * time: the peaks are taken at a reference time when the slots change (another bucket, a new
   * day in {@link remember}, a slot coming of age, another inferred interval) and scaled by one
   * factor per point after.
   */
  private prepareRecurrence(bucket: number, t: number): number {
    const tu = this.tuning;
    const rate = Math.LN2 / tu.recurrenceHalfLife;
    const stale =
      bucket !== this.recurBucket || t >= this.recurUntil || this.interval !== this.recurInterval || this.recurStale;
    if (stale) {
      this.readRecurrence(bucket, t, rate);
    }
    this.recurNow = Math.exp(-(t - this.recurRef) * rate);
    return this.recurExpected * this.recurNow;
  }

  /** Rebuild the window {@link prepareRecurrence} reads, at reference time `t`. */
  private readRecurrence(bucket: number, t: number, rate: number): void {
    const tu = this.tuning;
    const n = tu.recurrenceBuckets;
    this.recurBucket = bucket;
    this.recurInterval = this.interval;
    this.recurStale = false;
    // The start of the bucket, not `t`: the values cached are then a function of the state and
    // the bucket only, so a restored detector (or one that scored a late point) rebuilding at
    // another moment gives the same outputs to the last bit.
    const bucketMs = DAY_MS / n;
    this.recurRef = t - (((t % bucketMs) + bucketMs) % bucketMs);
    this.recurUntil = Infinity;
    this.recurMax.fill(0);
    let slots = 0;
    let decay = 0;
    for (let k = -tu.recurrenceSpan; k <= tu.recurrenceSpan; k++) {
      const b = (((bucket + k) % n) + n) % n;
      for (let slot = 0; slot < 2; slot++) {
        const start = this.recurT[2 * b + slot];
        // A slot never filled (a bucket the sampling interval skips, or no earlier day yet) has
        // no peak; one of today is read once it is half a day old.
        if (start === -Infinity) continue;
        if (!(t - start >= DAY_MS / 2)) {
          this.recurUntil = Math.min(this.recurUntil, start + DAY_MS / 2);
          continue;
        }
        const d = Math.exp(-(this.recurRef - start) * rate);
        slots++;
        decay += d;
        for (let i = 0; i < EVIDENCE; i++) {
          const v = this.recurS[2 * (i * n + b) + slot] * d;
          if (v > this.recurMax[i]) this.recurMax[i] = v;
        }
      }
    }
    const perSlot = this.interval === null ? 1 : Math.max(1, DAY_MS / n / this.interval);
    this.recurExpected = slots === 0 ? 0 : (Math.log10(slots * perSlot + 1) * decay) / slots;
  }

  /**
   * Record the surprises of every evidence at this time of day: slot 0 keeps the newest day's
   * peak, slot 1 the previous day's; a slot starts a new day when it is half a day old.
   */
  private remember(bucket: number, t: number, raw: Float64Array): void {
    const rt = this.recurT;
    const rs = this.recurS;
    const n = this.tuning.recurrenceBuckets;
    const newDay = !(t - rt[2 * bucket] < DAY_MS / 2);
    if (newDay) {
      rt[2 * bucket + 1] = rt[2 * bucket];
      rt[2 * bucket] = t;
      // The window read by prepareRecurrence holds this bucket. (Otherwise only slot 0, under
      // half a day old and so not read, changes.)
      this.recurStale = true;
    }
    for (let i = 0; i < EVIDENCE; i++) {
      const j = 2 * (i * n + bucket);
      if (newDay) {
        rs[j + 1] = rs[j];
        rs[j] = raw[i];
      } else if (raw[i] > rs[j]) {
        rs[j] = raw[i];
      }
    }
  }

  /** 0 for a point that does not exceed the peak reported within the last `cooldown` points. */
  private suppress(s: number): number {
    this.peakAge++;
    if (s > this.peak || this.peakAge >= this.tuning.cooldown) {
      this.peak = s;
      this.peakAge = 0;
      return s;
    }
    return 0;
  }

  private learn(x: number, z: number, dailyBucket: number, weeklyBucket: number): void {
    const tu = this.tuning;
    const f = this.forecast;
    const n = this.points;
    for (let k = 0; k < PREDICTORS; k++) {
      if (Number.isNaN(f[k])) continue;
      const err = Math.abs(x - f[k]);
      const m = this.errors[k];
      if (m === 0) {
        this.mae[k] = err;
        this.maeLong[k] = err;
        this.mse[k] = err * err;
      } else {
        this.mae[k] += Math.max(1 / tu.scaleMemory, 1 / (m + 1)) * (err - this.mae[k]);
        this.maeLong[k] += Math.max(1 / tu.longScaleMemory, 1 / (m + 1)) * (err - this.maeLong[k]);
        this.mse[k] += Math.max(1 / tu.selectMemory, 1 / (m + 1)) * (err * err - this.mse[k]);
      }
      this.errors[k] = m + 1;
    }
    if (n === 0) {
      this.valueCenter = x;
      this.hi = x;
      this.lo = x;
    }
    if (x > this.hi) this.hi = x;
    if (x < this.lo) this.lo = x;
    const rv = Math.max(1 / tu.valueMemory, 1 / (n + 1));
    this.valueSpread += rv * (Math.abs(x - this.valueCenter) - this.valueSpread);
    this.valueCenter += rv * (x - this.valueCenter);
    this.shortZ[n % this.shortZ.length] = z;
    this.recent[n % this.recent.length] = x;
    const dl = this.driftRing.length;
    this.driftSum += x - this.driftRing[n % dl];
    this.driftRing[n % dl] = x;
    this.ewma = n === 0 ? x : this.ewma + tu.ewmaAlpha * (x - this.ewma);
    this.last = x;
    if (this.daily) this.daily.update(dailyBucket, x);
    if (this.weekly) this.weekly.update(weeklyBucket, x);
    this.points = n + 1;
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
    // An inferred interval waits for the median of three gaps: the profiles' resolution is fixed
    // at creation, and the first gap of an irregular series (NAB's traffic files) can be a hole.
    if (this.interval === null || (this.fixedInterval === null && this.gapCount < PROFILE_GAPS)) return;
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

  /**
   * Versioned, JSON-safe, compact state (`{format: 'series-detector', version: 2, options,
   * state}`, tuning only where it differs from the default). {@link SeriesDetector.fromJSON}
   * restores a detector that continues with identical outputs.
   */
  toJSON(): SeriesDetectorJson {
    const w = new StateWriter();
    this.writeState(w);
    const tuning = tuningOverrides(this.tuning);
    return {
      format: 'series-detector',
      version: STATE_VERSION,
      options: {
        direction: this.direction,
        missing: this.missing,
        intervalMs: this.fixedInterval,
        daily: this.useDaily,
        weekly: this.useWeekly,
      },
      ...(tuning ? { tuning } : {}),
      state: w.finish(),
    };
  }

  /** Fixed-order binary state; array sizes follow from the tuning, profile sizes are written. */
  private writeState(w: StateWriter): void {
    for (const k of SCALARS) {
      const v = this[k];
      w.number(v === null ? NaN : v);
    }
    for (const a of this.arrays()) w.array(a);
    for (const p of [this.daily, this.weekly]) {
      w.number(p ? p.buckets : 0);
      p?.writeState(w);
    }
    for (const m of this.tails) m.writeState(w);
  }

  /** Inverse of {@link writeState}, into this detector (built with the same options and tuning). */
  private readState(r: StateReader): void {
    this.recurStale = true;
    const target = this as unknown as Record<string, number | null>;
    for (const k of SCALARS) {
      const v = r.number();
      target[k] = Number.isNaN(v) && (k === 'lastT' || k === 'interval') ? null : v;
    }
    for (const a of this.arrays()) r.array(a);
    const tu = this.tuning;
    const profile = (periodMs: number, max: number): SeasonalProfile | null => {
      const buckets = r.number();
      if (buckets === 0) return null;
      if (!(Number.isInteger(buckets) && buckets >= 1 && buckets <= max)) {
        throw new SeriesDetectorError(`series detector state: ${buckets} seasonal buckets, at most ${max} expected`);
      }
      return SeasonalProfile.readState(r, periodMs, buckets, tu.seasonalAlpha, tu.seasonalGamma);
    };
    this.daily = profile(DAY_MS, tu.dailyBuckets);
    this.weekly = profile(WEEK_MS, tu.weeklyBuckets);
    for (let i = 0; i < EVIDENCE; i++) this.tails[i] = TailModel.readState(r, tu.tail);
    r.end();
  }

  /** Typed-array state, in serialisation order; their sizes follow from the tuning. */
  private arrays(): Array<Float64Array | Float32Array> {
    return [
      this.gaps,
      this.recent,
      this.mae,
      this.maeLong,
      this.mse,
      this.errors,
      this.shortZ,
      this.driftRing,
      this.recurT,
      this.recurS,
    ];
  }

  /**
   * Restore a detector from {@link toJSON} output (also after JSON.stringify/parse). State of
   * version 1 (earlier builds, ~33 KB of JSON) is refused like any unknown version: the caller
   * starts a new detector, which relearns within a day.
   * @throws SeriesDetectorError on another format, another version, or damaged state.
   */
  static fromJSON(json: unknown): SeriesDetector {
    const j = json as SeriesDetectorJson | null;
    if (!j || typeof j !== 'object' || j.format !== 'series-detector') {
      throw new SeriesDetectorError('not a serialised series detector (format must be "series-detector")');
    }
    if (j.version !== STATE_VERSION) {
      throw new SeriesDetectorError(
        `unsupported series detector version ${String(j.version)}, expected ${STATE_VERSION}`,
      );
    }
    const o = j.options;
    if (!o || typeof o !== 'object' || typeof j.state !== 'string') {
      throw new SeriesDetectorError('series detector state: options and state are required');
    }
    if (j.tuning !== undefined && (j.tuning === null || typeof j.tuning !== 'object')) {
      throw new SeriesDetectorError('series detector state: tuning must be an object');
    }
    const d = new SeriesDetector({
      direction: o.direction,
      missing: o.missing,
      intervalMs: o.intervalMs ?? undefined,
      daily: o.daily,
      weekly: o.weekly,
      tuning: j.tuning,
    });
    d.readState(new StateReader(j.state, 'series detector state'));
    return d;
  }
}

/** The entries of `t` that differ from {@link DEFAULT_TUNING}, or null when none does. */
function tuningOverrides(t: SeriesTuning): Partial<SeriesTuning> | null {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(t)) {
    if (JSON.stringify(v) !== JSON.stringify(DEFAULT_TUNING[k as keyof SeriesTuning])) {
      out[k] = v;
      any = true;
    }
  }
  return any ? (out as Partial<SeriesTuning>) : null;
}

/** Quantiles of |N(0,1)| at probabilities (i + 0.5)/n, i = 0..n−1. */
function halfNormalQuantiles(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = normalQuantile(0.5 + (0.5 * (i + 0.5)) / n);
  return out;
}

/** Standard normal quantile for p in (0, 1) (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new SeriesDetectorError(`normalQuantile needs p in (0, 1), got ${p}`);
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((-0.007784894002430293 * q - 0.3223964580411365) * q - 2.400758277161838) * q - 2.549732539343734) * q +
        4.374664141464968) *
        q +
        2.938163982698783) /
      ((((0.007784695709041462 * q + 0.3224671290700398) * q + 2.445134137142996) * q + 3.754408661907416) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((-39.69683028665376 * r + 220.9460984245205) * r - 275.9285104469687) * r + 138.357751867269) * r -
      30.66479806614716) *
      r +
      2.506628277459239) *
      q) /
    (((((-54.47609879822406 * r + 161.5858368580409) * r - 155.6989798598866) * r + 66.80131188771972) * r -
      13.28068155288572) *
      r +
      1)
  );
}
