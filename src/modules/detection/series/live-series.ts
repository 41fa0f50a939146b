import { SeriesDetector, seriesDefaultsFor } from './series-detector';

/** The per-minute series of a service that the live detectors watch. */
export const SERIES_METRICS = ['request_count', 'error_rate', 'latency_p95'] as const;
export type SeriesMetric = (typeof SERIES_METRICS)[number];

export interface MetricUpdate {
  likelihood: number;
  expected: number | null;
  anomaly: boolean;
}

/** A metric's streaming detector with the live threshold applied. */
export interface MetricDetector {
  update(minuteMs: number, value: number | null): MetricUpdate;
  toJSON(): unknown;
}

const MINUTE = 60_000;

class LiveMetricDetector implements MetricDetector {
  constructor(
    private readonly detector: SeriesDetector,
    private readonly threshold: number,
  ) {}

  update(minuteMs: number, value: number | null): MetricUpdate {
    const r = this.detector.update(minuteMs, value);
    return { likelihood: r.likelihood, expected: r.expected ?? null, anomaly: !r.missing && r.likelihood >= this.threshold };
  }

  toJSON(): unknown {
    return this.detector.toJSON();
  }
}

/**
 * A new detector for a live metric: one point per minute, directions and missing-point policy of
 * SPEC §7 (requests both ways with silent minutes counted as zero; error rate and latency upwards,
 * minutes without data skipped).
 */
export function createMetricDetector(metric: SeriesMetric, threshold: number): MetricDetector {
  return new LiveMetricDetector(new SeriesDetector({ ...seriesDefaultsFor(metric), intervalMs: MINUTE }), threshold);
}

/** A detector restored from its stored state. */
export function restoreMetricDetector(_metric: SeriesMetric, json: unknown, threshold: number): MetricDetector {
  return new LiveMetricDetector(SeriesDetector.fromJSON(json), threshold);
}
