import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { randomUUID } from 'crypto';
import { Counter, Gauge, Histogram } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { DetectionRepository, DetectionFilter, DetectionCursor } from '../store/detection.repository';
import { DetectionRow, EventRepository, EventRow } from '../store/event.repository';
import { SeriesRepository } from '../store/series.repository';
import { DAY_PARTITIONED, DayPartitionedTable, PartitionRepository } from '../store/partition.repository';
import { ModelRegistryService } from '../retrain/model-registry.service';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AnomalyBus } from './anomaly-bus';
import { ServiceBaseline, BASELINE_WINDOW } from './baseline/service-baseline';
import { ANOMALIES, ANOMALY_SCORE, DRIFT_PSI, INGEST_EVENTS } from './detection.metrics';
import { DriftMonitor } from './drift-monitor';
import { LogEvent } from './features/log-event';
import { Explanation } from './model/anomaly-model';

/** An accepted event to score, with the id it is stored under. */
export interface IncomingEvent {
  id: string;
  event: LogEvent;
}

export interface EventDetection {
  score: number;
  prediction: number;
  model_version: number | null;
  /** Present when a cold-start baseline scored the event instead of a model. */
  baseline?: 'warming' | 'ready';
  drift_alert: boolean;
  explanation?: unknown;
}

export interface MetricsSummary {
  tenant: string;
  events_total: number;
  anomalies_total: number;
  anomaly_rate: number;
  score: { min: number | null; mean: number | null; p05: number | null; p50: number | null; p95: number | null; sample: number };
  drift: { psi: Record<string, number>; drift_alert: boolean; threshold: number; sample: number };
  active_model_version: number | null;
  last_trained_at: string | null;
  /** The event-time watermark: minutes up to it are due to close (null before the first event). */
  series_watermark: string | null;
  /** The newest event time seen. */
  newest_event_time: string | null;
  /** Event time up to which minutes have been closed and judged so far (catches up with series_watermark). */
  series_closed_until: string | null;
  /** Anomalies stored but not yet through the incident policy (0 once alerting has caught up). */
  incident_backlog: number;
}

const SUMMARY_SAMPLE = 10_000;
const DRIFT_SAMPLE = 1000;
const MAINTENANCE_MS = 60_000;
/** Day partitions are created this many days ahead of today. */
const PARTITION_DAYS_AHEAD = 3;

/**
 * Scores events with the tenant's active model (per-service sub-models), or with cold-start
 * baselines for services the model does not know; stores events and anomalies together; reads the
 * anomaly history back. Also the retention jobs of events and detections.
 */
@Injectable()
export class DetectionService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(DetectionService.name);
  private readonly stream = new Logger('metrics-stream');
  private readonly baselines = new Map<string, Promise<ServiceBaseline>>();
  private readonly drift: DriftMonitor;
  private readonly retention = new PeriodicJob(MAINTENANCE_MS, () => this.maintain(undefined, { scheduled: true }), { aligned: true });

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
    private readonly tenants: TenantRegistry,
    private readonly events: EventRepository,
    private readonly detections: DetectionRepository,
    private readonly seriesStore: SeriesRepository,
    private readonly partitions: PartitionRepository,
    private readonly bus: AnomalyBus,
    private readonly jobs: TenantJobRunner,
    @InjectMetric(INGEST_EVENTS) private readonly ingestCounter: Counter<string>,
    @InjectMetric(ANOMALIES) private readonly anomalyCounter: Counter<string>,
    @InjectMetric(ANOMALY_SCORE) private readonly scoreHistogram: Histogram<string>,
    @InjectMetric(DRIFT_PSI) driftGauge: Gauge<string>,
  ) {
    this.drift = new DriftMonitor(config.driftPsiThreshold, (tenant, psi) => {
      for (const [feature, value] of Object.entries(psi)) driftGauge.set({ tenant, feature }, value);
    });
  }

  /**
   * Creates the day partitions from the retention cutoff to {@link PARTITION_DAYS_AHEAD} days
   * ahead before the service takes requests, then starts the retention job (its first run is at
   * the next aligned minute). Without this, a fresh database routes the first minute's rows to the
   * default partitions, and creating a day's partition while inserts route rows into the default
   * one for that day fails them ("violates partition constraint") or deadlocks the series job.
   */
  async onModuleInit(): Promise<void> {
    await this.ensurePartitions(Date.now());
    this.retention.start();
  }

  /** The day partitions of every partitioned table from the retention cutoff (detections: today) to the days ahead. */
  private async ensurePartitions(now: number): Promise<void> {
    const cutoff = new Date(now - this.config.eventRetentionHours * 3_600_000);
    for (const table of Object.keys(DAY_PARTITIONED) as DayPartitionedTable[]) {
      try {
        await this.partitions.ensureDayPartitions(table, table === 'detections' ? new Date(now) : cutoff, new Date(now + PARTITION_DAYS_AHEAD * 86_400_000));
      } catch (e) {
        this.logger.warn(`partition maintenance of ${table} failed: ${(e as Error).message}`);
      }
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.retention.stop();
  }

  countRejected(tenantId: string, reasons: string[], source: string): void {
    for (const reason of reasons) this.ingestCounter.inc({ tenant: tenantId, outcome: 'rejected', reason, source });
  }

  /**
   * Scores and stores accepted events. Events already stored under the same id (a retried
   * request) are not stored again: their original result is returned.
   */
  async process(tenantId: string, incoming: IncomingEvent[], source: string): Promise<EventDetection[]> {
    if (!incoming.length) return [];
    const active = await this.registry.active(tenantId);
    const model = active?.model;
    const results: EventDetection[] = new Array(incoming.length);
    const driftAlert = this.drift.observe(tenantId, incoming.map((i) => i.event), model);

    const byModel: number[] = [];
    const byService = new Map<string, number[]>();
    incoming.forEach((inc, i) => {
      if (model?.knowsService(inc.event.service)) byModel.push(i);
      else {
        const list = byService.get(inc.event.service) ?? [];
        list.push(i);
        byService.set(inc.event.service, list);
      }
    });
    if (byModel.length && model) {
      const scored = model.score(byModel.map((i) => incoming[i].event));
      byModel.forEach((i, k) => {
        const s = scored[k];
        results[i] = { score: s.score, prediction: s.prediction, model_version: active!.version, drift_alert: driftAlert, explanation: s.explanation };
      });
    }
    for (const [service, idx] of byService) {
      const baseline = await this.baselineFor(tenantId, service);
      const scored = baseline.scoreBatch(idx.map((i) => incoming[i].event));
      idx.forEach((i, k) => {
        const s = scored[k];
        results[i] = { score: s.score, prediction: s.prediction, model_version: null, baseline: s.state, drift_alert: driftAlert, explanation: s.explanation };
      });
    }

    const rows: EventRow[] = [];
    const anomalies: DetectionRow[] = [];
    const loki = Boolean(this.config.lokiPushUrl);
    // Lines that came from Loki (intake, scheduler) are never shipped back as new.
    const shipEvents = loki && source === 'api';
    incoming.forEach(({ id, event }, i) => {
      const r = results[i];
      rows.push({
        id,
        service: event.service,
        ts: event.timestamp,
        source,
        durationMs: event.durationMs ?? null,
        statusCode: event.statusCode ?? null,
        bytes: event.bytes ?? null,
        metadata: event.metadata,
        metadataJson: event.metadataJson,
        score: r.score,
        prediction: r.prediction,
        modelVersion: r.model_version,
        baseline: r.baseline ?? null,
        ship: shipEvents,
      });
      if (r.prediction === -1) {
        anomalies.push({
          id: randomUUID(),
          kind: 'event',
          eventId: id,
          service: event.service,
          ts: event.timestamp,
          score: r.score,
          prediction: -1,
          driftAlert,
          modelVersion: r.model_version,
          baseline: r.baseline !== undefined,
          explanation: r.explanation ?? null,
          metadata: event.metadata,
          durationMs: event.durationMs ?? null,
          statusCode: event.statusCode ?? null,
          ship: loki,
        });
      }
    });
    const inserted = await this.events.insertScored(tenantId, rows, anomalies);

    const repeats = incoming.filter((inc) => !inserted.has(inc.id)).map((inc) => ({ id: inc.id, ts: inc.event.timestamp }));
    if (repeats.length) {
      const stored = await this.events.findResults(tenantId, repeats);
      incoming.forEach((inc, i) => {
        const s = stored.get(inc.id);
        if (!inserted.has(inc.id) && s) {
          results[i] = {
            score: s.score,
            prediction: s.prediction,
            model_version: s.modelVersion,
            ...(s.baseline ? { baseline: s.baseline } : {}),
            drift_alert: results[i].drift_alert,
            explanation: s.explanation ?? undefined,
          };
        }
      });
    }
    this.signal(tenantId, source, incoming, results, anomalies, inserted);
    this.bus.publish(
      tenantId,
      anomalies.filter((a) => a.eventId !== null && inserted.has(a.eventId)),
    );
    return results;
  }

  private signal(
    tenantId: string,
    source: string,
    incoming: IncomingEvent[],
    results: EventDetection[],
    anomalies: DetectionRow[],
    inserted: Set<string>,
  ): void {
    let accepted = 0;
    incoming.forEach((inc, i) => {
      if (!inserted.has(inc.id)) return;
      accepted++;
      this.scoreHistogram.observe({ tenant: tenantId, scorer: results[i].baseline ? 'baseline' : 'model' }, Math.max(0, 1 - results[i].score));
    });
    if (accepted) this.ingestCounter.inc({ tenant: tenantId, outcome: 'accepted', reason: '', source }, accepted);
    for (const a of anomalies) {
      if (!a.eventId || !inserted.has(a.eventId)) continue;
      this.anomalyCounter.inc({ tenant: tenantId, kind: a.kind, scorer: a.baseline ? 'baseline' : 'model' });
      // One JSON line per anomaly, labelled for Loki/Grafana (the seed's metrics stream).
      this.stream.log({
        msg: 'anomaly',
        stream: this.config.metricsStream,
        tenant: tenantId,
        id: a.id,
        kind: a.kind,
        event_id: a.eventId,
        service: a.service,
        timestamp: a.ts.toISOString(),
        score: a.score,
        prediction: a.prediction,
        duration_ms: a.durationMs,
        status_code: a.statusCode,
        model_version: a.modelVersion,
        drift_alert: a.driftAlert,
        summary: (a.explanation as Explanation | null)?.summary,
      });
    }
  }

  private baselineFor(tenantId: string, service: string): Promise<ServiceBaseline> {
    const key = `${tenantId}\u0000${service}`;
    let b = this.baselines.get(key);
    if (!b) {
      b = this.events.recentForService(tenantId, service, BASELINE_WINDOW).then((rows) => {
        const baseline = new ServiceBaseline();
        baseline.seed(rows);
        return baseline;
      });
      // A failed load must not poison the cache.
      b.catch(() => this.baselines.delete(key));
      this.baselines.set(key, b);
    }
    return b;
  }

  feedback(tenantId: string, id: string, label: 'false_positive' | 'confirmed'): Promise<DetectionRow | null> {
    return this.detections.setFeedback(tenantId, id, label);
  }

  list(tenantId: string, filter: DetectionFilter, limit: number, after?: DetectionCursor): Promise<DetectionRow[]> {
    return this.detections.list(tenantId, filter, limit, after);
  }

  async summary(tenantId: string): Promise<MetricsSummary> {
    const [events, anomalies, active, recent] = await Promise.all([
      this.events.summary(tenantId, SUMMARY_SAMPLE),
      this.detections.count(tenantId),
      this.registry.active(tenantId),
      this.events.recent(tenantId, DRIFT_SAMPLE),
    ]);
    const backlog = await this.detections.countAlertPending(tenantId);
    const closedUntil = await this.seriesStore.closedUntil(tenantId);
    const mark = await this.seriesStore.watermark(tenantId, {
      now: Date.now(),
      graceMs: this.config.seriesGraceSeconds * 1000,
      idleMs: this.config.seriesIdleSeconds * 1000,
    });
    let drift = { psi: {} as Record<string, number>, alert: false };
    if (active && recent.length) {
      drift = active.model.drift(recent, this.config.driftPsiThreshold);
    }
    const round = (v: number | null) => (v === null ? null : Math.round(v * 1e4) / 1e4);
    return {
      tenant: tenantId,
      events_total: events.total,
      anomalies_total: anomalies,
      anomaly_rate: events.total ? Math.round((anomalies / events.total) * 1e6) / 1e6 : 0,
      score: {
        min: round(events.min),
        mean: round(events.mean),
        p05: round(events.p05),
        p50: round(events.p50),
        p95: round(events.p95),
        sample: Math.min(events.total, SUMMARY_SAMPLE),
      },
      drift: { psi: drift.psi, drift_alert: drift.alert, threshold: this.config.driftPsiThreshold, sample: recent.length },
      active_model_version: active?.version ?? null,
      last_trained_at: active?.trainedAt.toISOString() ?? null,
      series_watermark: mark.watermark?.toISOString() ?? null,
      newest_event_time: mark.maxEventTs?.toISOString() ?? null,
      series_closed_until: closedUntil?.toISOString() ?? null,
      incident_backlog: backlog,
    };
  }

  /**
   * Retention: day partitions of events and series tables before `EVENT_RETENTION_HOURS` are
   * dropped whole (event time: a partition goes once its last possible timestamp is older than the
   * cutoff, so rows are kept for the retention period and at most one day more), partitions are
   * created from the cutoff's day to {@link PARTITION_DAYS_AHEAD} days ahead; then the history
   * limit of detections, tenant by tenant through the shared job runner (job `retention`; with
   * `scheduled`, once a minute across replicas), and detections partitions it emptied are dropped.
   */
  async maintain(now = Date.now(), options: { scheduled?: boolean } = {}): Promise<void> {
    const cutoff = new Date(now - this.config.eventRetentionHours * 3_600_000);
    await this.ensurePartitions(now);
    for (const table of Object.keys(DAY_PARTITIONED) as DayPartitionedTable[]) {
      if (table === 'detections') continue;
      try {
        await this.partitions.dropDayPartitionsBefore(table, cutoff);
      } catch (e) {
        this.logger.warn(`partition maintenance of ${table} failed: ${(e as Error).message}`);
      }
    }
    await this.jobs.runEach(
      'retention',
      this.tenants.list(),
      { intervalMs: options.scheduled ? MAINTENANCE_MS : undefined },
      (tenant) => this.detections.pruneToLimit(tenant, this.config.storeHistoryLimit),
      () => this.retention.stopping,
    );
    try {
      await this.partitions.dropDayPartitionsBefore('detections', new Date(now - 86_400_000), { onlyEmpty: true });
    } catch (e) {
      this.logger.warn(`partition maintenance of detections failed: ${(e as Error).message}`);
    }
  }
}
