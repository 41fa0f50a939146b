import { DDSketch } from '@datadog/sketches-js';
import type { AppConfig } from '../../../config/app-config';
import { IncidentPolicySettings, simulateIncidents, SimulatedIncident } from '../../alerts/incident-policy';
import type { DetectionRow } from '../../store/event.repository';
import { TimeSlicer } from '../../../common/time-slicer';
import { ServiceBaseline } from '../baseline/service-baseline';
import { LogEvent } from '../features/log-event';
import { AnomalyModel } from '../model/anomaly-model';
import { DEFAULT_SIGNAL_OPTIONS, MinuteSignals, SignalOptions, signalOptionsOf } from '../series/minute-signals';
import { addEvent, emptyPoint, MinutePoint, seriesDetection, walkMinutes } from '../series/minute-walk';

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
  metric?: string;
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

/** How the replay judges series and incidents: the live settings. */
export interface ReplaySettings {
  signals: SignalOptions;
  incidents: IncidentPolicySettings;
}

/** The replay settings of a configuration: the same as the live series job and alerting use. */
export function replaySettingsOf(c: AppConfig): ReplaySettings {
  return {
    signals: signalOptionsOf(c),
    incidents: { cooldownMs: c.alertCooldownMinutes * 60_000, renotifyMs: c.alertRenotifyMinutes * 60_000, minSeverity: c.alertMinSeverity },
  };
}

export const DEFAULT_REPLAY_SETTINGS: ReplaySettings = {
  signals: DEFAULT_SIGNAL_OPTIONS,
  incidents: { cooldownMs: 10 * 60_000, renotifyMs: 0, minSeverity: 'info' },
};

/**
 * A backtest: events scored like live ones (the tenant's model, or per-service cold-start
 * baselines built from the replayed events themselves), then aggregated per service and minute
 * and fed to the same per-minute signal tests as the live series job (series/minute-walk.ts), and
 * their findings to the same incident policy (alerts/incident-policy.ts), in event-time order.
 * Nothing is stored as a live detection and nothing alerts: the results stay with the caller.
 */
export class ReplayEngine {
  readonly detections: ReplayDetection[] = [];
  readonly counts = { events: 0, eventAnomalies: 0, seriesAnomalies: 0, incidents: 0 };
  /** Incidents the live pipeline would have opened, after finish(). */
  incidents: SimulatedIncident[] = [];
  private readonly baselines = new Map<string, ServiceBaseline>();
  private readonly buckets = new Map<string, Map<number, MinutePoint>>();
  private readonly eventAnomalyRows: DetectionRow[] = [];

  constructor(
    private readonly model: AnomalyModel | null,
    private readonly modelVersion: number | null,
    private readonly settings: ReplaySettings = DEFAULT_REPLAY_SETTINGS,
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
    }
    this.counts.events += events.length;
    const anomalous = new Set<LogEvent>();
    if (byModel.length && this.model) {
      this.model.score(byModel).forEach((s, i) => {
        if (s.prediction !== -1) return;
        anomalous.add(byModel[i]);
        this.eventAnomaly(byModel[i], s.score, this.modelVersion, false, s.explanation);
      });
    }
    for (const [service, list] of byService) {
      const baseline = this.baselines.get(service) ?? new ServiceBaseline();
      this.baselines.set(service, baseline);
      baseline.scoreBatch(list).forEach((s, i) => {
        if (s.prediction !== -1) return;
        anomalous.add(list[i]);
        this.eventAnomaly(list[i], s.score, null, true, s.explanation);
      });
    }
    for (const e of events) {
      const t = e.timestamp.getTime();
      const minute = t - (((t % MINUTE) + MINUTE) % MINUTE);
      const series = this.buckets.get(e.service) ?? new Map<number, MinutePoint>();
      const point = series.get(minute) ?? emptyPoint();
      addEvent(point, { durationMs: e.durationMs, statusCode: e.statusCode, bytes: e.bytes, anomalous: anomalous.has(e) });
      series.set(minute, point);
      this.buckets.set(e.service, series);
    }
  }

  private eventAnomaly(e: LogEvent, score: number, version: number | null, baseline: boolean, explanation: unknown): void {
    this.counts.eventAnomalies++;
    this.eventAnomalyRows.push({
      id: e.id ?? `replay-${this.counts.eventAnomalies}`,
      kind: 'event',
      eventId: e.id ?? null,
      service: e.service,
      ts: e.timestamp,
      score,
      prediction: -1,
      driftAlert: false,
      modelVersion: version,
      baseline,
      explanation,
      metadata: null,
      durationMs: e.durationMs ?? null,
      statusCode: e.statusCode ?? null,
    });
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
   * Closes every service's minutes as the live job would once the input's newest event is a grace
   * older (all of them here), runs the signal tests, and the incident policy over their findings;
   * returns the traces for a report. Long work: it yields the event loop every few ms (the caller
   * bounds the span, see {@link seriesMinutes}).
   */
  async finish(): Promise<SeriesTrace[]> {
    const slicer = new TimeSlicer();
    const traces: SeriesTrace[] = [];
    const seriesRows: DetectionRow[] = [];
    const lastMinute = new Map<string, number>();
    // Every service is closed up to the newest minute of the input, as the tenant's watermark would.
    let end = -Infinity;
    for (const series of this.buckets.values()) for (const t of series.keys()) if (t + MINUTE > end) end = t + MINUTE;
    for (const [service, series] of [...this.buckets].sort(([a], [b]) => a.localeCompare(b))) {
      const dataMinutes = [...series.keys()].sort((a, b) => a - b);
      const signals = new MinuteSignals(this.settings.signals);
      const trace: SeriesTrace = { service, minutes: [], count: [], errorRate: [], latencyP95: [] };
      for (const step of walkMinutes(signals, series, dataMinutes, dataMinutes[0], end)) {
        await slicer.yield();
        if (step.type === 'gap') continue;
        const { t, point: b } = step;
        let p95: number | null = null;
        let p50: number | null = null;
        let p99: number | null = null;
        if (b.latencies.length) {
          const sketch = new DDSketch();
          for (const l of b.latencies) sketch.accept(l);
          const q = (x: number) => Math.round(sketch.getValueAtQuantile(x) * 100) / 100;
          [p50, p95, p99] = [q(0.5), q(0.95), q(0.99)];
        }
        trace.minutes.push(t);
        trace.count.push(b.count);
        trace.errorRate.push(b.count ? b.errors / b.count : null);
        trace.latencyP95.push(p95);
        for (const f of step.findings) {
          const bytes = b.bytesN ? Math.round(Math.expm1(b.bytesLogSum / b.bytesN)) : null;
          const row = seriesDetection(service, t, f, this.settings.signals.alpha, { count: b.count, errors: b.errors, p50, p95, p99, bytes });
          seriesRows.push(row);
          this.counts.seriesAnomalies++;
          this.keep({
            kind: 'series',
            timestamp: new Date(t).toISOString(),
            service,
            score: row.score,
            prediction: -1,
            model_version: null,
            metric: f.metric,
            value: f.value,
            expected: f.expected,
            likelihood: row.likelihood ?? undefined,
            explanation: row.explanation,
            duration_ms: f.signal === 'latency' ? f.value : null,
          });
        }
      }
      lastMinute.set(service, end - MINUTE);
      traces.push(trace);
    }
    this.incidents = simulateIncidents([...seriesRows, ...this.eventAnomalyRows], this.settings.incidents, lastMinute);
    this.counts.incidents = this.incidents.length;
    return traces;
  }
}
