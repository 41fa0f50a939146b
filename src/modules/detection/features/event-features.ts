import { matrix, Matrix } from '../core/matrix';
import { quantile } from '../core/stats';
import { LogEvent } from './log-event';

/**
 * The per-event feature vector, in column order:
 * - `log_duration_ms`: ln(1 + duration), floored at the training median. Latency is heavy-tailed,
 *   hence the log; the floor makes the feature one-sided, because a request faster than usual is
 *   not a performance problem and would otherwise be isolated as readily as a slow one.
 * - `status_class`: 5 for a server error (5xx), 4 for throttling (429), 2 for everything else. A
 *   404 is routine for a web service; only the classes that signal trouble stand apart.
 * - `log_bytes`: ln(1 + response size), two-sided (an empty page is as suspicious as a huge one).
 * - `hour_sin`, `hour_cos`: the time of day on the unit circle (23:59 is next to 00:00), after
 *   mapping the clock through the service's training traffic curve, so each stretch of the
 *   circle holds the same share of training events. Without that, quiet night hours are sparse
 *   and every night-time request would look anomalous.
 */
export const FEATURE_NAMES = ['log_duration_ms', 'status_class', 'log_bytes', 'hour_sin', 'hour_cos'] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];
export const N_FEATURES = FEATURE_NAMES.length;

/**
 * What an operator reads in an explanation: the raw field behind one or more model features.
 * `hour_of_day` gathers the two circle coordinates.
 */
export const DISPLAY_FIELDS = ['duration_ms', 'status_code', 'bytes', 'hour_of_day'] as const;
export type DisplayField = (typeof DISPLAY_FIELDS)[number];
export const FEATURE_TO_DISPLAY: readonly number[] = [0, 1, 2, 3, 3];

const DAY_MS = 86_400_000;
/** Resolution of the traffic curve: 15-minute bins. */
const DAY_BINS = 96;

const dayFraction = (t: number) => (((t % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS;

/** Raw (display) values of an event; NaN where the event does not carry the field. */
export function displayValues(e: LogEvent): [number, number, number, number] {
  return [e.durationMs ?? NaN, e.statusCode ?? NaN, e.bytes ?? NaN, dayFraction(e.timestamp.getTime()) * 24];
}

export function statusClass(status: number): number {
  if (status >= 500) return 5;
  if (status === 429) return 4;
  return 2;
}

/** Fitted parameters of the feature mapping, stored with each sub-model. */
export interface FeatureTransformJson {
  durationFloor: number;
  /** Cumulative share of training events at each 15-minute boundary (97 values, 0 → 1). */
  dayCdf: number[];
  /**
   * Whether the time-of-day features are in use (absent in models saved before it existed: true).
   * Off, `hour_sin`/`hour_cos` are a constant 0 that no tree can split on.
   */
  timeOfDay?: boolean;
}

/**
 * Event-time span training events must cover before the time-of-day features are used: a day, less
 * the hour at which the traffic curve is judged. A model trained on an afternoon would otherwise
 * learn that every other hour of the day is unusual.
 */
export const TIME_OF_DAY_MIN_SPAN_MS = 23 * 3_600_000;

/** Event-time span of events in ms (0 for none). */
export function eventSpanMs(events: readonly LogEvent[]): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const e of events) {
    const t = e.timestamp.getTime();
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return events.length ? hi - lo : 0;
}

/** Maps events to feature vectors with parameters fitted on the training events. */
export class FeatureTransform {
  private constructor(
    readonly durationFloor: number,
    private readonly dayCdf: Float64Array,
    readonly timeOfDay: boolean,
  ) {}

  /**
   * Fits the duration floor and the traffic curve. The time-of-day features are on only when the
   * events span {@link TIME_OF_DAY_MIN_SPAN_MS} of event time (their cycle).
   */
  static fit(events: readonly LogEvent[]): FeatureTransform {
    const durations: number[] = [];
    // Laplace smoothing: an empty bin still gets a sliver of the circle.
    const counts = new Float64Array(DAY_BINS).fill(1);
    for (const e of events) {
      if (e.durationMs !== undefined) durations.push(e.durationMs);
      counts[Math.min(DAY_BINS - 1, Math.floor(dayFraction(e.timestamp.getTime()) * DAY_BINS))]++;
    }
    const total = counts.reduce((a, b) => a + b, 0);
    const cdf = new Float64Array(DAY_BINS + 1);
    for (let b = 0; b < DAY_BINS; b++) cdf[b + 1] = cdf[b] + counts[b] / total;
    cdf[DAY_BINS] = 1;
    const floor = durations.length ? quantile(Float64Array.from(durations), 0.5) : 0;
    return new FeatureTransform(floor, cdf, eventSpanMs(events) >= TIME_OF_DAY_MIN_SPAN_MS);
  }

  static fromJSON(j: FeatureTransformJson): FeatureTransform {
    if (!Array.isArray(j?.dayCdf) || j.dayCdf.length !== DAY_BINS + 1) throw new Error('invalid feature transform');
    return new FeatureTransform(j.durationFloor, Float64Array.from(j.dayCdf), j.timeOfDay !== false);
  }

  toJSON(): FeatureTransformJson {
    return { durationFloor: this.durationFloor, dayCdf: [...this.dayCdf], timeOfDay: this.timeOfDay };
  }

  /** Feature values of one event into `out`; NaN marks a missing value (see {@link FeatureImputer}). */
  features(e: LogEvent, out: Float64Array, offset = 0): void {
    const pos = dayFraction(e.timestamp.getTime()) * DAY_BINS;
    const bin = Math.min(DAY_BINS - 1, Math.floor(pos));
    const cdf = this.dayCdf[bin] + (this.dayCdf[bin + 1] - this.dayCdf[bin]) * (pos - bin);
    const angle = cdf * 2 * Math.PI;
    out[offset] = e.durationMs === undefined ? NaN : Math.log1p(Math.max(e.durationMs, this.durationFloor));
    out[offset + 1] = e.statusCode === undefined ? NaN : statusClass(e.statusCode);
    out[offset + 2] = e.bytes === undefined ? NaN : Math.log1p(e.bytes);
    out[offset + 3] = this.timeOfDay ? Math.sin(angle) : 0;
    out[offset + 4] = this.timeOfDay ? Math.cos(angle) : 0;
  }

  /** Feature matrix of events (row-major), NaN where a value is missing. */
  matrix(events: readonly LogEvent[]): Matrix {
    const data = new Float64Array(events.length * N_FEATURES);
    for (let i = 0; i < events.length; i++) this.features(events[i], data, i * N_FEATURES);
    return matrix(data, events.length, N_FEATURES);
  }
}

/**
 * Missing values, handled on purpose: a missing feature takes the training median, the value that
 * moves the isolation path the least, and the explanation reports it as missing. (Zero would read
 * as "instant, empty response" and make every event without a duration look anomalous.) A feature
 * missing from all training rows gets a neutral value of 0 and carries no signal.
 */
export class FeatureImputer {
  constructor(readonly medians: readonly number[]) {}

  static fit(m: Matrix): FeatureImputer {
    const medians: number[] = [];
    for (let c = 0; c < m.cols; c++) {
      const present: number[] = [];
      for (let r = 0; r < m.rows; r++) {
        const v = m.data[r * m.cols + c];
        if (!Number.isNaN(v)) present.push(v);
      }
      medians.push(present.length ? quantile(Float64Array.from(present), 0.5) : 0);
    }
    return new FeatureImputer(medians);
  }

  /** Replaces NaN in place; returns the number of imputed cells. */
  apply(m: Matrix): number {
    let n = 0;
    for (let r = 0; r < m.rows; r++) {
      for (let c = 0; c < m.cols; c++) {
        const i = r * m.cols + c;
        if (Number.isNaN(m.data[i])) {
          m.data[i] = this.medians[c];
          n++;
        }
      }
    }
    return n;
  }
}

/** Training distribution of the display fields, for explanations: p01, p50, p99 and the 5xx share. */
export interface DisplayStats {
  p01: number[];
  p50: number[];
  p99: number[];
  /** Share of training events with a 5xx status, among those with a status. */
  errorShare: number;
}

export function displayStats(events: readonly LogEvent[]): DisplayStats {
  const cols: number[][] = DISPLAY_FIELDS.map(() => []);
  let withStatus = 0;
  let errors = 0;
  for (const e of events) {
    const v = displayValues(e);
    for (let c = 0; c < v.length; c++) if (!Number.isNaN(v[c])) cols[c].push(v[c]);
    if (e.statusCode !== undefined) {
      withStatus++;
      if (e.statusCode >= 500) errors++;
    }
  }
  const q = (c: number, p: number) => (cols[c].length ? quantile(Float64Array.from(cols[c]), p) : NaN);
  return {
    p01: DISPLAY_FIELDS.map((_, c) => q(c, 0.01)),
    p50: DISPLAY_FIELDS.map((_, c) => q(c, 0.5)),
    p99: DISPLAY_FIELDS.map((_, c) => q(c, 0.99)),
    errorShare: withStatus ? errors / withStatus : 0,
  };
}
