import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { DDSketch } from '@datadog/sketches-js';
import { randomUUID } from 'crypto';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { DetectionRow } from '../store/event.repository';
import { ClosedMinute, PartialRow, SeriesRepository, SeriesStateRow } from '../store/series.repository';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AnomalyBus } from './anomaly-bus';
import { ANOMALIES } from './detection.metrics';
import { MetricDetector, SERIES_METRICS, SeriesMetric, createMetricDetector, restoreMetricDetector } from './series/live-series';

const MINUTE = 60_000;
/** A series that was silent longer than this (e.g. the whole service was down) resumes instead of replaying every empty minute. */
const MAX_BACKFILL_MINUTES = 24 * 60;

const floorMinute = (t: number) => t - (((t % MINUTE) + MINUTE) % MINUTE);

interface MinutePoint {
  count: number;
  errors: number;
  latencies: number[];
}

/**
 * Series detection (SPEC §7): events are summed per tenant, service and minute (count, error rate,
 * latency quantiles through a DDSketch) as they are stored; once a minute is older than the grace
 * period it is closed and fed to each metric's streaming detector. A minute with no events is fed
 * too, so a service that goes silent is an anomaly of its traffic series. Detector state is stored
 * with the minutes, so a restart resumes exactly. Series anomalies become detections
 * (`kind: "series"`) and go to the alerts like event anomalies.
 */
@Injectable()
export class SeriesService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeriesService.name);
  private job?: PeriodicJob;
  /** Detectors this replica advanced, by tenant and service, with the last minute they have seen. */
  private readonly cache = new Map<string, { lastMinute: number; detectors: Map<SeriesMetric, MetricDetector> }>();

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly series: SeriesRepository,
    private readonly bus: AnomalyBus,
    private readonly jobs: TenantJobRunner,
    @InjectMetric(ANOMALIES) private readonly anomalies: Counter<string>,
  ) {}

  onApplicationBootstrap(): void {
    this.job = new PeriodicJob(this.intervalMs, () => this.closeAll(undefined, { scheduled: true }), { aligned: true }).start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.job?.stop();
  }

  private get intervalMs(): number {
    return this.config.seriesCloseIntervalSeconds * 1000;
  }

  /**
   * Closes due minutes of every tenant through the shared job runner (job `series-close`; with
   * `scheduled`, once per SERIES_CLOSE_INTERVAL_SECONDS across replicas); one tenant's failure
   * never stops the others, and a stopping service stops between tenants.
   */
  async closeAll(now = Date.now(), options: { scheduled?: boolean } = {}): Promise<void> {
    await this.jobs.runEach(
      'series-close',
      this.tenants.list(),
      { intervalMs: options.scheduled ? this.intervalMs : undefined },
      async (tenant) => {
        await this.closeTenant(tenant, now);
      },
      () => Boolean(this.job?.stopping),
    );
  }

  /** Closes the tenant's minutes older than the grace period; returns the series detections made. */
  async closeTenant(tenantId: string, now = Date.now()): Promise<DetectionRow[]> {
    const horizon = floorMinute(now - this.config.seriesGraceSeconds * 1000);
    const result = await this.series.close(tenantId, new Date(horizon), (states, partials) => this.compute(tenantId, horizon, states, partials));
    if (!result) return [];
    if (result.detections.length) this.anomalies.inc({ tenant: tenantId, kind: 'series', scorer: 'series' }, result.detections.length);
    this.bus.publish(tenantId, result.detections);
    return result.detections;
  }

  private async compute(tenantId: string, horizon: number, states: SeriesStateRow[], partials: PartialRow[]) {
    let slice = performance.now();
    // A backlog (a backfill, a restart after downtime) is long work: give requests the event loop every few ms.
    const yieldNow = async () => {
      if (performance.now() - slice < 8) return;
      await new Promise((r) => setImmediate(r));
      slice = performance.now();
    };
    const byService = new Map<string, Map<number, MinutePoint>>();
    for (const p of partials) {
      const minutes = byService.get(p.service) ?? new Map<number, MinutePoint>();
      const t = p.minute.getTime();
      const point = minutes.get(t) ?? { count: 0, errors: 0, latencies: [] };
      point.count += p.count;
      point.errors += p.errors;
      for (const l of p.latencies) point.latencies.push(l);
      minutes.set(t, point);
      byService.set(p.service, minutes);
    }
    const stateOf = new Map(states.map((s) => [s.service, s]));
    const services = new Set([...stateOf.keys(), ...byService.keys()]);
    const minutes: ClosedMinute[] = [];
    const newStates: SeriesStateRow[] = [];
    const detections: DetectionRow[] = [];

    for (const service of services) {
      const points = byService.get(service) ?? new Map<number, MinutePoint>();
      const state = stateOf.get(service);
      const firstPending = Math.min(...[...points.keys()]);
      let start = state ? state.lastMinute.getTime() + MINUTE : firstPending;
      // Minutes that closed before these events arrived: merge the counts, do not re-score the past.
      for (const [t, p] of points) if (t < start) minutes.push(this.closed(service, t, p, true));
      // Nothing new to close (most ticks: they run more often than minutes end): state unchanged.
      if (!Number.isFinite(start) || start >= horizon) continue;
      const detectors = this.detectorsFor(tenantId, service, state);
      if (horizon - start > MAX_BACKFILL_MINUTES * MINUTE) start = horizon - MAX_BACKFILL_MINUTES * MINUTE;
      for (let t = start; t < horizon; t += MINUTE) {
        await yieldNow();
        const p = points.get(t) ?? { count: 0, errors: 0, latencies: [] };
        const closed = this.closed(service, t, p, false);
        minutes.push(closed);
        const values: Record<SeriesMetric, number | null> = {
          request_count: p.count,
          error_rate: p.count ? p.errors / p.count : null,
          latency_p95: closed.p95,
        };
        for (const [metric, detector] of detectors) {
          const out = detector.update(t, values[metric]);
          if (out.anomaly) detections.push(this.detection(service, t, metric, values[metric], out.expected, out.likelihood, closed));
        }
      }
      this.cache.set(`${tenantId}\u0000${service}`, { lastMinute: horizon - MINUTE, detectors });
      newStates.push({
        service,
        lastMinute: new Date(horizon - MINUTE),
        detectors: Object.fromEntries([...detectors].map(([m, d]) => [m, d.toJSON()])),
      });
    }
    return { minutes, states: newStates, detections };
  }

  /**
   * The service's detectors as of its stored state: from memory when this replica closed the last
   * minutes itself (restoring ~33 KB of JSON per detector every tick is the costly part), else
   * restored from the state row (another replica closed them, or a restart), else new.
   */
  private detectorsFor(tenantId: string, service: string, state: SeriesStateRow | undefined): Map<SeriesMetric, MetricDetector> {
    const key = `${tenantId}\u0000${service}`;
    const cached = this.cache.get(key);
    // Taken out while in use: a run that fails halfway leaves no half-advanced detectors behind.
    this.cache.delete(key);
    if (cached && state && cached.lastMinute === state.lastMinute.getTime()) return cached.detectors;
    const threshold = this.config.seriesLikelihoodThreshold;
    return new Map<SeriesMetric, MetricDetector>(
      SERIES_METRICS.map((metric) => {
        const saved = state?.detectors[metric];
        if (saved) {
          try {
            return [metric, restoreMetricDetector(metric, saved, threshold)];
          } catch (e) {
            // Unreadable state (an incompatible build) must not block the tenant's series: start afresh.
            this.logger.warn(`series state of ${service}/${metric} cannot be restored (${(e as Error).message}); starting a new detector`);
          }
        }
        return [metric, createMetricDetector(metric, threshold)];
      }),
    );
  }

  private closed(service: string, t: number, p: MinutePoint, late: boolean): ClosedMinute {
    let sketch: DDSketch | null = null;
    if (p.latencies.length) {
      sketch = new DDSketch();
      for (const l of p.latencies) sketch.accept(l);
    }
    const q = (x: number) => (sketch ? Math.round(sketch.getValueAtQuantile(x) * 100) / 100 : null);
    return {
      service,
      minute: new Date(t),
      count: p.count,
      errors: p.errors,
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
      sketch: sketch ? Buffer.from(sketch.toProto()) : null,
      late,
    };
  }

  private detection(
    service: string,
    t: number,
    metric: SeriesMetric,
    value: number | null,
    expected: number | null,
    likelihood: number,
    minute: ClosedMinute,
  ): DetectionRow {
    const fmt = (x: number | null) => (x === null ? 'none' : metric === 'error_rate' ? `${(x * 100).toFixed(1)}%` : String(Math.round(x * 100) / 100));
    const direction = value !== null && expected !== null && value < expected ? 'below' : 'above';
    const summary =
      metric === 'request_count' && value === 0
        ? `no requests this minute (expected ${fmt(expected)})`
        : `${metric} ${fmt(value)} is ${direction} the expected ${fmt(expected)} (likelihood ${likelihood.toFixed(4)})`;
    const threshold = this.config.seriesLikelihoodThreshold;
    return {
      id: randomUUID(),
      kind: 'series',
      eventId: null,
      service,
      ts: new Date(t),
      score: Math.round((threshold - likelihood) * 1e6) / 1e6,
      prediction: -1,
      driftAlert: false,
      modelVersion: null,
      baseline: false,
      explanation: { summary, features: [{ name: metric, value, p50: expected, p99: null, contribution: 1 }] },
      metadata: { count: minute.count, errors: minute.errors, latency_p50: minute.p50, latency_p95: minute.p95, latency_p99: minute.p99 },
      durationMs: metric === 'latency_p95' ? value : null,
      statusCode: null,
      metric,
      value,
      expected,
      likelihood,
      ship: Boolean(this.config.lokiPushUrl),
    };
  }
}
