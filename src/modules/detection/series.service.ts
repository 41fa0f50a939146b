import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { DetectionRow } from '../store/event.repository';
import { CloseResult, PartialRow, SeriesRepository, SeriesStateRow, Watermark } from '../store/series.repository';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AnomalyBus } from './anomaly-bus';
import { ANOMALIES } from './detection.metrics';
import { SignalOptions, signalOptionsOf } from './series/minute-signals';
import { CloseMinutesRunner } from './series/close-minutes.runner';

/**
 * Series detection in event time (SPEC §7, issue 12). Events are summed per tenant, service and
 * minute as they are stored (count, server errors, latencies, response sizes, per-event anomalies).
 * A minute closes once the tenant's event-time watermark — the newest event time seen minus
 * SERIES_GRACE_SECONDS — has passed its end, the way stream processors handle lateness (a service whose
 * events are still arriving behind the tenant's newest is held at its own newest, see
 * SeriesRepository.serviceHorizons); the wall
 * clock moves the watermark on only for a tenant whose event time has stood still for
 * SERIES_IDLE_SECONDS, so a tenant that stops sending is still noticed. A backfill, a catch-up and
 * live traffic therefore close the same minutes with the same contents and give the same
 * detections. Each closed minute is fed to the service's MinuteSignals (traffic judged as a count,
 * errors given the minute's requests, latency and response size on a log scale, per-event anomalies
 * against the model's rate); a finding becomes a detection (`kind: "series"`) that alerting turns into
 * an incident. Silences longer than MAX_EMPTY_RUN minutes are recorded as gaps, not walked. The
 * computation (`closeMinutes`, series/close-minutes.ts) runs in a worker thread: a backlog of minutes never holds the
 * event loop that answers requests.
 */
@Injectable()
export class SeriesService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeriesService.name);
  private job?: PeriodicJob;
  private readonly signalOptions: SignalOptions;
  private readonly closer = new CloseMinutesRunner();

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
    await this.closer.stop();
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
        await this.series.pruneBefore(tenant, new Date(now - this.config.eventRetentionHours * 3_600_000));
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
   * detections made. `now` (wall clock) only matters for a tenant gone quiet. A backlog is closed
   * in passes of bounded size (`maxPartials` partial rows, default CLOSE_PASS_MAX_PARTIALS, one
   * transaction each), one after the other until it is done or the service stops.
   */
  async closeTenant(tenantId: string, now = Date.now(), options: { maxPartials?: number } = {}): Promise<DetectionRow[]> {
    const found: DetectionRow[] = [];
    let activeHorizons: Record<string, number> | undefined;
    for (;;) {
      const result = await this.series.close(
        tenantId,
        this.watermarkSettings(now),
        (states, partials, horizon, holds) => this.compute(tenantId, horizon, holds, states, partials),
        options.maxPartials,
        activeHorizons,
      );
      if (!result) break;
      activeHorizons = result.activeHorizons;
      if (result.detections.length) this.anomalies.inc({ tenant: tenantId, kind: 'series', scorer: 'series' }, result.detections.length);
      for (const g of result.gaps) this.logger.log(`tenant ${tenantId}, service ${g.service}: no events from ${g.from.toISOString()} to ${g.to.toISOString()} (recorded as a gap)`);
      this.bus.publish(tenantId, result.detections);
      for (const d of result.detections) found.push(d);
      if (!result.more || this.job?.stopping) break;
    }
    return found;
  }

  private watermarkSettings(now: number) {
    return { now, graceMs: this.config.seriesGraceSeconds * 1000, idleMs: this.config.seriesIdleSeconds * 1000 };
  }

  private async compute(tenantId: string, horizon: number, holds: Record<string, number>, states: SeriesStateRow[], partials: PartialRow[]): Promise<CloseResult> {
    const { warnings, ...result } = await this.closer.run({ horizon, holds, states, partials, signalOptions: this.signalOptions, ship: Boolean(this.config.lokiPushUrl) });
    for (const w of warnings) this.logger.warn(`tenant ${tenantId}: ${w}`);
    return result;
  }
}
