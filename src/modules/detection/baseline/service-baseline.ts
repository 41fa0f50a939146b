import { quantileSorted } from '../core/stats';
import { LogEvent } from '../features/log-event';
import { Explanation } from '../model/anomaly-model';

/** Events a service needs before its baseline scores anything. */
export const BASELINE_MIN_EVENTS = 30;
/** The reference events a baseline keeps. */
export const BASELINE_WINDOW = 500;
/**
 * Event time the reference spans once full: past the first BASELINE_WINDOW events, one event per
 * HORIZON / WINDOW of event time joins it (about one every 43 s), so a slow ramp over an hour moves it
 * by a few percent however busy the service is.
 */
export const BASELINE_HORIZON_MS = 6 * 3_600_000;
/** Robust z-score (MADs from the median) at which a value is anomalous. */
const Z_THRESHOLD = 3.5;
/** MAD floor (in ln units, ~5%) so a service with near-constant latency or size does not flag noise. */
const MIN_MAD = 0.05;

type Row = { durationMs: number | null; statusCode: number | null; bytes?: number | null; ts?: Date | null };

export interface BaselineScore {
  score: number;
  prediction: 1 | -1;
  /** 'warming' until the service has BASELINE_MIN_EVENTS events. */
  state: 'warming' | 'ready';
  explanation?: Explanation;
}

/** Median and MAD (scaled to σ) of a sample, with the MAD floored. */
function robust(values: number[]): { median: number; mad: number } | null {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  const median = quantileSorted(sorted, 0.5);
  const dev = Float64Array.from(values, (v) => Math.abs(v - median)).sort();
  return { median, mad: Math.max(MIN_MAD, 1.4826 * quantileSorted(dev, 0.5)) };
}

/**
 * Cold-start scoring for a service with no model (SPEC §7), over what the model covers: latency
 * (ln(1 + duration_ms), slower only), status class (a server error where they are rare) and response
 * size (ln(1 + bytes), both ways), each as a robust z-score — MADs from the median of a reference
 * sample. The score uses the model's sign convention, (3.5 − z) / 7: negative means anomalous.
 * The reference does not follow a slow ramp or an incident: anomalous events never join it, and once
 * it holds BASELINE_WINDOW events new ones join at most once per BASELINE_HORIZON_MS / BASELINE_WINDOW
 * of event time (a 6-hour horizon whatever the traffic).
 */
export class ServiceBaseline {
  private logDurations: number[] = [];
  private statuses: number[] = [];
  private logBytes: number[] = [];
  private lastJoined = -Infinity;

  /** Seeds the reference from stored events (newest first, as the repository returns them). */
  seed(rows: Row[]): void {
    for (let i = rows.length - 1; i >= 0; i--) this.push(rows[i]);
  }

  get size(): number {
    return Math.max(this.logDurations.length, this.statuses.length, this.logBytes.length);
  }

  /**
   * Scores a batch against the reference before it, then offers the batch's normal events to the
   * reference. Only while the reference is too small does the batch count towards its own baseline
   * (the robust statistics resist a few outliers; a batch that is all errors still looks normal then).
   */
  scoreBatch(events: readonly LogEvent[]): BaselineScore[] {
    const rows = events.map((e) => ({ durationMs: e.durationMs ?? null, statusCode: e.statusCode ?? null, bytes: e.bytes ?? null, ts: e.timestamp }));
    const warm = this.size >= BASELINE_MIN_EVENTS;
    if (!warm) for (const r of rows) this.push(r);
    const scores = this.score(events);
    if (warm) rows.forEach((r, i) => scores[i].prediction === 1 && this.push(r));
    return scores;
  }

  private score(events: readonly LogEvent[]): BaselineScore[] {
    const n = this.size;
    if (n < BASELINE_MIN_EVENTS) return events.map(() => ({ score: 0, prediction: 1, state: 'warming' }));
    const lat = robust(this.logDurations);
    const size = robust(this.logBytes);
    const errorShare = this.statuses.length ? this.statuses.filter((s) => s >= 500).length / this.statuses.length : 0;
    return events.map((e) => {
      const zLatency = e.durationMs === undefined || !lat ? 0 : (Math.log1p(e.durationMs) - lat.median) / lat.mad;
      // A server error counts as far out when they are rare (< 5%) for this service.
      const zError = e.statusCode !== undefined && e.statusCode >= 500 && errorShare < 0.05 ? 2 * Z_THRESHOLD : 0;
      const zBytes = e.bytes === undefined || !size ? 0 : Math.abs(Math.log1p(e.bytes) - size.median) / size.mad;
      const z = Math.max(zLatency, zError, zBytes);
      const score = (Z_THRESHOLD - z) / (2 * Z_THRESHOLD);
      if (score >= 0) return { score, prediction: 1, state: 'ready' };
      let explanation: Explanation;
      if (z === zLatency && lat) {
        const medianMs = Math.expm1(lat.median);
        explanation = {
          summary: `duration_ms ${e.durationMs} is ${zLatency.toFixed(1)} MADs above this service's median (${medianMs.toFixed(1)}) of ${this.logDurations.length} reference events`,
          features: [{ name: 'duration_ms', value: e.durationMs ?? null, p50: round(medianMs), p99: null, contribution: 1 }],
        };
      } else if (z === zBytes && size) {
        const medianBytes = Math.expm1(size.median);
        explanation = {
          summary: `bytes ${e.bytes} is ${zBytes.toFixed(1)} MADs from this service's median (${Math.round(medianBytes)}) of ${this.logBytes.length} reference events`,
          features: [{ name: 'bytes', value: e.bytes ?? null, p50: Math.round(medianBytes), p99: null, contribution: 1 }],
        };
      } else {
        explanation = {
          summary: `status_code ${e.statusCode} is a server error (${(errorShare * 100).toFixed(1)}% of this service's ${this.statuses.length} reference events)`,
          features: [{ name: 'status_code', value: e.statusCode ?? null, p50: null, p99: null, contribution: 1 }],
        };
      }
      return { score, prediction: -1, state: 'ready', explanation };
    });
  }

  private push(r: Row): void {
    const t = r.ts ? r.ts.getTime() : NaN;
    if (this.size >= BASELINE_WINDOW) {
      // Full: sample in event time (events without a time, from older rows, always join).
      if (Number.isFinite(t) && t - this.lastJoined < BASELINE_HORIZON_MS / BASELINE_WINDOW) return;
    }
    if (Number.isFinite(t)) this.lastJoined = Math.max(this.lastJoined, t);
    const add = (list: number[], v: number) => {
      list.push(v);
      if (list.length > BASELINE_WINDOW) list.shift();
    };
    if (r.durationMs !== null && r.durationMs !== undefined) add(this.logDurations, Math.log1p(r.durationMs));
    if (r.statusCode !== null && r.statusCode !== undefined) add(this.statuses, r.statusCode);
    if (r.bytes !== null && r.bytes !== undefined && r.bytes >= 0) add(this.logBytes, Math.log1p(r.bytes));
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
