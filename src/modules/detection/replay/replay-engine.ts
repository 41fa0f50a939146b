import { DDSketch } from '@datadog/sketches-js';
import { TimeSlicer } from '../../../common/time-slicer';
import { ServiceBaseline } from '../baseline/service-baseline';
import { LogEvent } from '../features/log-event';
import { AnomalyModel } from '../model/anomaly-model';
import { createMetricDetector, MetricDetector, SERIES_METRICS, SeriesMetric } from '../series/live-series';

const MINUTE = 60_000;
/** Detections kept with a job (the summary counts all of them). */
export const MAX_KEPT_DETECTIONS = 10_000;

export interface ReplayDetection {
  kind: 'event' | 'series';
  timestamp: string;
  service: string;
  score: number;
  prediction: -1;
  model_version: number | null;
  baseline?: boolean;
  explanation?: unknown;
  event_id?: string;
  duration_ms?: number | null;
  status_code?: number | null;
  metric?: SeriesMetric;
  value?: number | null;
  expected?: number | null;
  likelihood?: number;
}

export interface SeriesTrace {
  service: string;
  minutes: number[];
  count: number[];
  errorRate: (number | null)[];
  latencyP95: (number | null)[];
}

/** Smallest and largest of many numbers (no spread: a long list would overflow the call stack). */
function keyRange(keys: Iterable<number>): { first: number; last: number } {
  let first = Infinity;
  let last = -Infinity;
  for (const k of keys) {
    if (k < first) first = k;
    if (k > last) last = k;
  }
  return { first, last };
}

/**
 * The size of the series work a set of events makes: the span of event time (ms) and the number
 * of service-minutes from each service's first minute to its last, gaps included (what
 * {@link ReplayEngine.finish} walks). Lets a caller refuse a replay before doing it.
 */
export function seriesMinutes(events: readonly LogEvent[]): { spanMs: number; serviceMinutes: number } {
  const ranges = new Map<string, { first: number; last: number }>();
  let first = Infinity;
  let last = -Infinity;
  for (const e of events) {
    const t = e.timestamp.getTime();
    if (t < first) first = t;
    if (t > last) last = t;
    const r = ranges.get(e.service);
    if (!r) ranges.set(e.service, { first: t, last: t });
    else {
      if (t < r.first) r.first = t;
      if (t > r.last) r.last = t;
    }
  }
  let serviceMinutes = 0;
  for (const r of ranges.values()) serviceMinutes += Math.floor(r.last / MINUTE) - Math.floor(r.first / MINUTE) + 1;
  return { spanMs: events.length ? last - first : 0, serviceMinutes };
}

interface Bucket {
  count: number;
  errors: number;
  latencies: number[];
}

/**
 * A backtest: events scored like live ones (the tenant's model, or per-service cold-start
 * baselines built from the replayed events themselves), then aggregated per service and minute
 * and fed to the series detectors, in time order. Nothing is stored as a live detection and
 * nothing alerts: the results stay with the caller.
 */
export class ReplayEngine {
  readonly detections: ReplayDetection[] = [];
  readonly counts = { events: 0, eventAnomalies: 0, seriesAnomalies: 0 };
  private readonly baselines = new Map<string, ServiceBaseline>();
  private readonly buckets = new Map<string, Map<number, Bucket>>();

  constructor(
    private readonly model: AnomalyModel | null,
    private readonly modelVersion: number | null,
    private readonly likelihoodThreshold: number,
  ) {}

  /** Scores a batch (sort the whole input by time first: baselines learn in order). */
  addEvents(events: LogEvent[]): void {
    const byModel: LogEvent[] = [];
    const byService = new Map<string, LogEvent[]>();
    for (const e of events) {
      if (this.model?.knowsService(e.service)) byModel.push(e);
      else {
        const list = byService.get(e.service);
        if (list) list.push(e);
        else byService.set(e.service, [e]);
      }
      const t = e.timestamp.getTime();
      const minute = t - (((t % MINUTE) + MINUTE) % MINUTE);
      const series = this.buckets.get(e.service) ?? new Map<number, Bucket>();
      const b = series.get(minute) ?? { count: 0, errors: 0, latencies: [] };
      b.count++;
      if ((e.statusCode ?? 0) >= 500) b.errors++;
      if (e.durationMs !== undefined) b.latencies.push(e.durationMs);
      series.set(minute, b);
      this.buckets.set(e.service, series);
    }
    this.counts.events += events.length;
    if (byModel.length && this.model) {
      this.model.score(byModel).forEach((s, i) => {
        if (s.prediction === -1) this.eventAnomaly(byModel[i], s.score, this.modelVersion, false, s.explanation);
      });
    }
    for (const [service, list] of byService) {
      const baseline = this.baselines.get(service) ?? new ServiceBaseline();
      this.baselines.set(service, baseline);
      baseline.scoreBatch(list).forEach((s, i) => {
        if (s.prediction === -1) this.eventAnomaly(list[i], s.score, null, true, s.explanation);
      });
    }
  }

  private eventAnomaly(e: LogEvent, score: number, version: number | null, baseline: boolean, explanation: unknown): void {
    this.counts.eventAnomalies++;
    this.keep({
      kind: 'event',
      timestamp: e.timestamp.toISOString(),
      service: e.service,
      score,
      prediction: -1,
      model_version: version,
      ...(baseline ? { baseline: true } : {}),
      explanation,
      event_id: e.id,
      duration_ms: e.durationMs ?? null,
      status_code: e.statusCode ?? null,
    });
  }

  private keep(d: ReplayDetection): void {
    if (this.detections.length < MAX_KEPT_DETECTIONS) this.detections.push(d);
  }

  /**
   * Runs the series detectors over every service's minutes, gaps included; returns the traces for a
   * report. Long work: it yields the event loop every few ms (the caller bounds the span, see
   * {@link seriesMinutes}).
   */
  async finish(): Promise<SeriesTrace[]> {
    const slicer = new TimeSlicer();
    const traces: SeriesTrace[] = [];
    for (const [service, series] of [...this.buckets].sort(([a], [b]) => a.localeCompare(b))) {
      const detectors = new Map<SeriesMetric, MetricDetector>(SERIES_METRICS.map((m) => [m, createMetricDetector(m, this.likelihoodThreshold)]));
      const { first, last } = keyRange(series.keys());
      const trace: SeriesTrace = { service, minutes: [], count: [], errorRate: [], latencyP95: [] };
      for (let t = first; t <= last; t += MINUTE) {
        await slicer.yield();
        const b = series.get(t) ?? { count: 0, errors: 0, latencies: [] };
        let p95: number | null = null;
        if (b.latencies.length) {
          const sketch = new DDSketch();
          for (const l of b.latencies) sketch.accept(l);
          p95 = Math.round(sketch.getValueAtQuantile(0.95) * 100) / 100;
        }
        const values: Record<SeriesMetric, number | null> = { request_count: b.count, error_rate: b.count ? b.errors / b.count : null, latency_p95: p95 };
        trace.minutes.push(t);
        trace.count.push(b.count);
        trace.errorRate.push(values.error_rate);
        trace.latencyP95.push(p95);
        for (const [metric, detector] of detectors) {
          const out = detector.update(t, values[metric]);
          if (!out.anomaly) continue;
          this.counts.seriesAnomalies++;
          this.keep({
            kind: 'series',
            timestamp: new Date(t).toISOString(),
            service,
            score: Math.round((this.likelihoodThreshold - out.likelihood) * 1e6) / 1e6,
            prediction: -1,
            model_version: null,
            metric,
            value: values[metric],
            expected: out.expected,
            likelihood: out.likelihood,
            duration_ms: metric === 'latency_p95' ? values[metric] : null,
          });
        }
      }
      traces.push(trace);
    }
    return traces;
  }
}
