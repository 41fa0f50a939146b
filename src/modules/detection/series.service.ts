import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { DDSketch } from '@datadog/sketches-js';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { DetectionRow } from '../store/event.repository';
import { ClosedMinute, PartialRow, SeriesGap, SeriesRepository, SeriesStateRow, Watermark } from '../store/series.repository';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AnomalyBus } from './anomaly-bus';
import { ANOMALIES } from './detection.metrics';
import { MinuteSignals, SignalOptions, signalOptionsOf } from './series/minute-signals';
import { sketchToProto } from './series/sketch-proto';
import { emptyPoint, MinutePoint, seriesDetection, walkMinutes } from './series/minute-walk';

const MINUTE = 60_000;
/**
 * Series detection in event time (SPEC §7, issue 12). Events are summed per tenant, service and
 * minute as they are stored (count, server errors, latencies, response sizes, per-event anomalies).
 * A minute closes once the tenant's event-time watermark — the newest event time seen minus
 * SERIES_GRACE_SECONDS — has passed its end, the way stream processors handle lateness; the wall
 * clock moves the watermark on only for a tenant whose event time has stood still for
 * SERIES_IDLE_SECONDS, so a tenant that stops sending is still noticed. A backfill, a catch-up and
 * live traffic therefore close the same minutes with the same contents and give the same
 * detections. Each closed minute is fed to the service's MinuteSignals (traffic judged as a count,
 * errors given the minute's requests, latency and response size on a log scale, per-event anomalies
 * against the model's rate); a finding becomes a detection (`kind: "series"`) that alerting turns into
 * an incident. Silences longer than MAX_EMPTY_RUN minutes are recorded as gaps, not walked.
 */
@Injectable()
export class SeriesService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeriesService.name);
  private job?: PeriodicJob;
  private readonly signalOptions: SignalOptions;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly series: SeriesRepository,
    private readonly bus: AnomalyBus,
    private readonly jobs: TenantJobRunner,
    @InjectMetric(ANOMALIES) private readonly anomalies: Counter<string>,
  ) {
    this.signalOptions = signalOptionsOf(config);
  }

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
        await this.series.pruneGapsBefore(tenant, new Date(now - this.config.eventRetentionHours * 3_600_000));
      },
      () => Boolean(this.job?.stopping),
    );
  }

  /** The tenant's event-time watermark as the series job sees it at `now` (wall clock, epoch ms). */
  watermark(tenantId: string, now = Date.now()): Promise<Watermark> {
    return this.series.watermark(tenantId, this.watermarkSettings(now));
  }

  /**
   * Closes the tenant's minutes that end before its event-time watermark; returns the series
   * detections made. `now` (wall clock) only matters for a tenant gone quiet.
   */
  async closeTenant(tenantId: string, now = Date.now()): Promise<DetectionRow[]> {
    const result = await this.series.close(tenantId, this.watermarkSettings(now), (states, partials, horizon) =>
      this.compute(tenantId, horizon, states, partials),
    );
    if (!result) return [];
    if (result.detections.length) this.anomalies.inc({ tenant: tenantId, kind: 'series', scorer: 'series' }, result.detections.length);
    for (const g of result.gaps) this.logger.log(`tenant ${tenantId}, service ${g.service}: no events from ${g.from.toISOString()} to ${g.to.toISOString()} (recorded as a gap)`);
    this.bus.publish(tenantId, result.detections);
    return result.detections;
  }

  private watermarkSettings(now: number) {
    return { now, graceMs: this.config.seriesGraceSeconds * 1000, idleMs: this.config.seriesIdleSeconds * 1000 };
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
      const point = minutes.get(t) ?? emptyPoint();
      point.count += p.count;
      point.errors += p.errors;
      for (const l of p.latencies) point.latencies.push(l);
      point.anomalies += p.anomalies;
      point.bytesN += p.bytesN;
      point.bytesLogSum += p.bytesLogSum;
      point.bytesLogSq += p.bytesLogSq;
      if (p.bytesLogMax !== null) point.bytesMax = Math.max(point.bytesMax, p.bytesLogMax);
      if (p.bytesLogMin !== null) point.bytesMin = Math.min(point.bytesMin, p.bytesLogMin);
      minutes.set(t, point);
      byService.set(p.service, minutes);
    }
    const stateOf = new Map(states.map((s) => [s.service, s]));
    const services = new Set([...stateOf.keys(), ...byService.keys()]);
    const minutes: ClosedMinute[] = [];
    const newStates: SeriesStateRow[] = [];
    const detections: DetectionRow[] = [];
    const gaps: SeriesGap[] = [];

    for (const service of services) {
      const points = byService.get(service) ?? new Map<number, MinutePoint>();
      const dataMinutes = [...points.keys()].sort((a, b) => a - b);
      const state = stateOf.get(service);
      // A service's series starts at its first event, not at some earlier time of the tenant.
      const start = state ? state.lastMinute.getTime() + MINUTE : (dataMinutes[0] ?? Infinity);
      // Minutes that closed before these events arrived: merge the counts, do not re-score the past.
      for (const t of dataMinutes) if (t < start) minutes.push(this.closed(service, t, points.get(t)!, true));
      // Nothing new to close (most ticks: they run more often than minutes end): state unchanged.
      if (!Number.isFinite(start) || start >= horizon) continue;
      const signals = this.signalsFor(service, state);
      for (const step of walkMinutes(signals, points, dataMinutes, start, horizon)) {
        await yieldNow();
        if (step.type === 'gap') {
          gaps.push({ service, from: new Date(step.from), to: new Date(step.to) });
          continue;
        }
        const closed = this.closed(service, step.t, step.point, false);
        minutes.push(closed);
        const figures = { count: closed.count, errors: closed.errors, p50: closed.p50, p95: closed.p95, p99: closed.p99, bytes: closed.bytesGeomean };
        for (const f of step.findings) detections.push(seriesDetection(service, step.t, f, this.signalOptions.alpha, figures, Boolean(this.config.lokiPushUrl)));
      }
      newStates.push({ service, lastMinute: new Date(horizon - MINUTE), detectors: signals.toJSON() as unknown as Record<string, unknown> });
    }
    return { minutes, states: newStates, detections, gaps };
  }

  /** The service's signal tests as of its stored state, or new ones (first minute, or a state of an older format). */
  private signalsFor(service: string, state: SeriesStateRow | undefined): MinuteSignals {
    if (state?.detectors) {
      try {
        return MinuteSignals.fromJSON(state.detectors, this.signalOptions);
      } catch (e) {
        // An older build's state (or an unreadable one) must not block the tenant's series: start afresh.
        this.logger.warn(`series state of ${service} cannot be restored (${(e as Error).message}); starting new signal tests`);
      }
    }
    return new MinuteSignals(this.signalOptions);
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
      anomalies: p.anomalies,
      bytesGeomean: p.bytesN ? Math.round(Math.expm1(p.bytesLogSum / p.bytesN)) : null,
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
      sketch: sketch ? Buffer.from(sketchToProto(sketch)) : null,
      late,
    };
  }
}
