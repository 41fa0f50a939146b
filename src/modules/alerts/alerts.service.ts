import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { randomUUID } from 'crypto';
import { Counter, Gauge } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { AnomalyBus } from '../detection/anomaly-bus';
import { AlertFilter, AlertRepository, AlertRow } from '../store/alert.repository';
import { IncidentFilter, IncidentRepository, IncidentRow } from '../store/incident.repository';
import { DetectionRow } from '../store/event.repository';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AlertOutboxSender } from './alert-outbox.sender';
import { IncidentPolicySettings, planIncidents } from './incident-policy';
import { ALERT_ANOMALIES, ALERTS_BACKLOG } from './alerts.metrics';

/** Pending detections taken per transaction. */
const BATCH = 500;

/**
 * Turns stored anomalies into alerts and drives their delivery. The anomaly bus wakes it as soon
 * as anomalies are committed; a timer (ALERT_POLL_SECONDS, and once at start) reconciles from the
 * `detections` table whatever the bus missed (a crash, another replica's ingest), closes quiet
 * incidents with a recovery message, and sends what is due. Every step is idempotent and safe to
 * run on several replicas at once.
 */
@Injectable()
export class AlertsService implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AlertsService.name);
  private readonly settings: IncidentPolicySettings;
  private readonly processing = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private ticking?: Promise<void>;
  private tickAgain = false;
  /** A pass asked for on purpose (start-up, a test) is waiting: it runs every tenant, not once per interval. */
  private forced = false;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly alerts: AlertRepository,
    private readonly incidents: IncidentRepository,
    private readonly bus: AnomalyBus,
    private readonly sender: AlertOutboxSender,
    private readonly jobs: TenantJobRunner,
    @InjectMetric(ALERT_ANOMALIES) private readonly anomalyCounter: Counter<string>,
    @InjectMetric(ALERTS_BACKLOG) private readonly backlogGauge: Gauge<string>,
  ) {
    this.settings = {
      cooldownMs: config.alertCooldownMinutes * 60_000,
      renotifyMs: config.alertRenotifyMinutes * 60_000,
      minSeverity: config.alertMinSeverity,
    };
  }

  onModuleInit(): void {
    this.unsubscribe = this.bus.subscribe((tenantId) => this.track(this.processTenant(tenantId)));
    this.timer = setInterval(() => void this.tick({ scheduled: true }), this.config.alertPollSeconds * 1000);
    this.timer.unref();
  }

  onApplicationBootstrap(): void {
    // Whatever was pending when the previous process stopped.
    void this.tick();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    // The sender stops claiming first, so nothing new starts while the calls in flight finish.
    await Promise.allSettled([this.sender.stop(), ...this.inFlight, this.ticking]);
  }

  /**
   * One pass of the background job: per tenant, new anomalies into alerts and quiet incidents
   * closed (one tenant's failure never stops the others); then delivery of what is due. Tests call
   * it directly instead of waiting for the timer. Concurrent calls share one pass. The per-tenant
   * part goes through the shared job runner (job `alerts`): `scheduled` (the timer) runs a tenant
   * once per ALERT_POLL_SECONDS across replicas; delivery is shared out by the outbox itself.
   */
  tick(options: { scheduled?: boolean } = {}): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!options.scheduled) this.forced = true;
    if (this.ticking) {
      this.tickAgain = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      try {
        do {
          this.tickAgain = false;
          const forced = this.forced;
          this.forced = false;
          await this.tickOnce(!forced);
        } while (this.tickAgain && !this.stopped);
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.track(this.ticking) as Promise<void>;
  }

  private async tickOnce(scheduled: boolean): Promise<void> {
    const tenants = this.tenants.list();
    let work = { pending: new Set(tenants), open: new Set(tenants) };
    try {
      work = await this.alerts.tenantsWithWork(tenants);
    } catch (e) {
      this.logger.warn(`alert job could not list the tenants with work, trying them all: ${(e as Error).message}`);
    }
    await this.jobs.runEach(
      'alerts',
      tenants.filter((t) => work.pending.has(t) || work.open.has(t)),
      { intervalMs: scheduled ? this.config.alertPollSeconds * 1000 : undefined },
      async (tenant) => {
        if (work.pending.has(tenant)) await this.processTenant(tenant);
        // Anomalies just processed may have opened incidents: they are checked for an end too.
        if (work.open.has(tenant) || work.pending.has(tenant)) {
          const ended = await this.incidents.endQuiet(tenant, this.settings.cooldownMs, randomUUID);
          if (ended) this.logger.log(`tenant ${tenant}: ${ended} incident(s) ended`);
        }
      },
      () => this.stopped,
    );
    if (this.stopped) return;
    await this.sender.drain();
    await this.updateBacklog(tenants);
  }

  /**
   * Applies the alert policy to the tenant's pending anomalies. Calls for a tenant already being
   * processed in this process join that run, which goes round once more.
   */
  processTenant(tenantId: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const running = this.processing.get(tenantId);
    if (running) {
      this.again.add(tenantId);
      return running;
    }
    const run = (async () => {
      let created = false;
      try {
        do {
          this.again.delete(tenantId);
          for (;;) {
            const plan = await this.incidents.processPending(tenantId, BATCH, (batch) => {
              const p = planIncidents(batch, this.settings);
              for (const [outcome, n] of p.outcomes) this.anomalyCounter.inc({ tenant: tenantId, outcome }, n);
              return p;
            });
            if (!plan) break;
            created ||= plan.messages.length > 0 || plan.ends.length > 0;
            if (plan.assignments.length < BATCH) break;
          }
        } while (this.again.has(tenantId) && !this.stopped);
      } finally {
        this.processing.delete(tenantId);
      }
      if (created && !this.stopped) void this.track(this.sender.drain());
    })();
    this.processing.set(tenantId, run);
    return run;
  }

  list(tenantId: string, filter: AlertFilter, limit: number, afterSeq?: number): Promise<AlertRow[]> {
    return this.alerts.list(tenantId, filter, limit, afterSeq);
  }

  /** The tenant's incidents, newest first, after the one at `afterSeq`. */
  listIncidents(tenantId: string, filter: IncidentFilter, limit: number, afterSeq?: number): Promise<IncidentRow[]> {
    return this.incidents.list(tenantId, filter, limit, afterSeq);
  }

  /** One incident of the tenant with (up to `limit` of) the anomalies that make it, or null. */
  async findIncident(tenantId: string, id: string, limit: number): Promise<{ incident: IncidentRow; anomalies: DetectionRow[] } | null> {
    const incident = await this.incidents.findById(tenantId, id);
    if (!incident) return null;
    return { incident, anomalies: await this.incidents.anomalies(tenantId, id, limit) };
  }

  private async updateBacklog(tenants: string[]): Promise<void> {
    const backlog = await this.alerts.backlogByTenant(tenants);
    for (const tenant of tenants) this.backlogGauge.set({ tenant }, backlog.get(tenant) ?? 0);
  }

  /** Remembers work in progress so shutdown waits for it; its failure is logged, never thrown at the caller. */
  private track<T>(p: Promise<T>): Promise<T | void> {
    const guarded = p.catch((e) => this.logger.error(`alert job failed: ${(e as Error).message}`));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
    return guarded;
  }
}
