import { quantileSorted } from '../core/stats';
import { LogEvent } from '../features/log-event';
import { Explanation } from '../model/anomaly-model';

/** Events a service needs before its baseline scores anything. */
export const BASELINE_MIN_EVENTS = 30;
/** The most recent events a baseline keeps. */
export const BASELINE_WINDOW = 500;
/** Robust z-score (MADs above the median) at which a latency is anomalous. */
const Z_THRESHOLD = 3.5;
/** MAD floor (in ln units, ~5%) so a service with near-constant latency does not flag noise. */
const MIN_MAD = 0.05;

export interface BaselineScore {
  score: number;
  prediction: 1 | -1;
  /** 'warming' until the service has BASELINE_MIN_EVENTS events. */
  state: 'warming' | 'ready';
  explanation?: Explanation;
}

/**
 * Cold-start scoring for a service with no model: robust statistics of its own latest events —
 * median and MAD of ln(duration), and its share of server errors. The score uses the model's sign
 * convention: (3.5 − z) / 7, so negative means anomalous (more than 3.5 MADs slower than usual, or a
 * server error where they are rare). Faster than usual is never anomalous.
 */
export class ServiceBaseline {
  private logDurations: number[] = [];
  private statuses: number[] = [];

  /** Seeds the window from stored events (newest first, as the repository returns them). */
  seed(rows: { durationMs: number | null; statusCode: number | null }[]): void {
    for (let i = rows.length - 1; i >= 0; i--) this.push(rows[i].durationMs, rows[i].statusCode);
  }

  get size(): number {
    return Math.max(this.logDurations.length, this.statuses.length);
  }

  /**
   * Scores a batch against the service's window before it, then adds the batch. Only while the
   * window is too small does the batch count towards its own baseline (the robust statistics
   * resist a few outliers; a batch that is all errors still looks normal then).
   */
  scoreBatch(events: readonly LogEvent[]): BaselineScore[] {
    const warm = this.size >= BASELINE_MIN_EVENTS;
    if (!warm) for (const e of events) this.push(e.durationMs ?? null, e.statusCode ?? null);
    try {
      return this.score(events);
    } finally {
      if (warm) for (const e of events) this.push(e.durationMs ?? null, e.statusCode ?? null);
    }
  }

  private score(events: readonly LogEvent[]): BaselineScore[] {
    const n = this.size;
    if (n < BASELINE_MIN_EVENTS) return events.map(() => ({ score: 0, prediction: 1, state: 'warming' }));
    const sorted = Float64Array.from(this.logDurations).sort();
    const median = sorted.length ? quantileSorted(sorted, 0.5) : NaN;
    const dev = Float64Array.from(this.logDurations, (v) => Math.abs(v - median)).sort();
    const mad = Math.max(MIN_MAD, dev.length ? 1.4826 * quantileSorted(dev, 0.5) : MIN_MAD);
    const errorShare = this.statuses.length ? this.statuses.filter((s) => s >= 500).length / this.statuses.length : 0;
    const medianMs = Math.expm1(median);
    return events.map((e) => {
      const zLatency = e.durationMs === undefined || Number.isNaN(median) ? 0 : (Math.log1p(e.durationMs) - median) / mad;
      // A server error counts as far out when they are rare (< 5%) for this service.
      const zError = e.statusCode !== undefined && e.statusCode >= 500 && errorShare < 0.05 ? 2 * Z_THRESHOLD : 0;
      const z = Math.max(zLatency, zError);
      const score = (Z_THRESHOLD - z) / (2 * Z_THRESHOLD);
      if (score >= 0) return { score, prediction: 1, state: 'ready' };
      const byLatency = zLatency >= zError;
      const explanation: Explanation = byLatency
        ? {
            summary: `duration_ms ${e.durationMs} is ${zLatency.toFixed(1)} MADs above this service's median (${medianMs.toFixed(1)}) of its last ${n} events`,
            features: [{ name: 'duration_ms', value: e.durationMs ?? null, p50: round(medianMs), p99: null, contribution: 1 }],
          }
        : {
            summary: `status_code ${e.statusCode} is a server error (${(errorShare * 100).toFixed(1)}% of this service's last ${n} events)`,
            features: [{ name: 'status_code', value: e.statusCode ?? null, p50: null, p99: null, contribution: 1 }],
          };
      return { score, prediction: -1, state: 'ready', explanation };
    });
  }

  private push(durationMs: number | null, statusCode: number | null): void {
    if (durationMs !== null && durationMs !== undefined) {
      this.logDurations.push(Math.log1p(durationMs));
      if (this.logDurations.length > BASELINE_WINDOW) this.logDurations.shift();
    }
    if (statusCode !== null && statusCode !== undefined) {
      this.statuses.push(statusCode);
      if (this.statuses.length > BASELINE_WINDOW) this.statuses.shift();
    }
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
