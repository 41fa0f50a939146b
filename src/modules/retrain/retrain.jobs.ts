import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { createHash } from 'crypto';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { IngestionService } from '../ingestion/ingestion.service';
import { formatLabels } from '../ingestion/loki/loki-push.codec';
import { LokiClient } from '../ingestion/loki/loki.client';
import { RetrainStateRepository } from '../store/retrain-state.repository';
import { TenantJobRunner } from '../jobs/tenant-job-runner';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { RetrainService } from './retrain.service';

const JOB = 'scheduler';
/** Sources of lines that are already ours: pulled back from Loki, they would be scored twice. */
const OWN_SOURCES = new Set(['api', 'loki-push', 'scheduler']);

export interface TenantTickResult {
  tenant: string;
  ran: boolean;
  pulled?: number;
  retrained?: { version: number; status: string; reason: string } | null;
  error?: string;
}

/**
 * The seed's main_scheduler: every DETECTION_INTERVAL_SECONDS, per tenant, pull the new log lines
 * from Loki (when configured) and score them like /ingest, then run the retrain check. Each
 * tenant's run goes through the shared {@link TenantJobRunner}: it holds the tenant's advisory
 * lock and records the interval's run, so with several replicas (or the CLI scheduler next to the
 * service) a tenant's job runs once per interval and the others count it `skipped`; one tenant's
 * failure never stops the others.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnModuleDestroy {
  private running?: Promise<TenantTickResult[]>;
  private job?: PeriodicJob;
  private stopped = false;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly retrain: RetrainService,
    private readonly ingestion: IngestionService,
    private readonly loki: LokiClient,
    private readonly state: RetrainStateRepository,
    private readonly jobs: TenantJobRunner,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.schedulerEnabled) this.start();
  }

  /** Starts the periodic loop (the service does at boot; the CLI scheduler too unless --once). */
  start(): void {
    if (this.job) return;
    this.job = new PeriodicJob(
      this.intervalMs,
      () => this.tick(undefined, undefined, { scheduled: true }),
      { aligned: true },
    ).start();
  }

  /** Stops the loop between tenants and waits for the tenant in progress. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    await this.job?.stop();
    await this.running?.catch(() => undefined);
  }

  private get intervalMs(): number {
    return this.config.detectionIntervalSeconds * 1000;
  }

  /**
   * One pass over `tenants` (default: all); overlapping passes in one process are skipped. With
   * `scheduled` (the timer, the CLI loop) a tenant whose job already ran in the current interval,
   * on any replica, is skipped; without it (a pass asked for on purpose) only the lock applies.
   */
  async tick(
    tenants = this.tenants.list(),
    now = () => new Date(),
    options: { scheduled?: boolean } = {},
  ): Promise<TenantTickResult[]> {
    if (this.running) return [];
    this.running = (async () => {
      const runs = await this.jobs.runEach(
        JOB,
        tenants,
        { intervalMs: options.scheduled ? this.intervalMs : undefined, failure: (r: TenantTickResult) => r.error },
        (tenant) => this.runTenant(tenant, now),
        () => this.stopped,
      );
      return runs.map(({ tenant, run }): TenantTickResult => {
        if (run.outcome === 'skipped') return { tenant, ran: false };
        if (run.outcome === 'ran') return run.value;
        return run.value ?? { tenant, ran: true, error: run.error };
      });
    })();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async runTenant(tenant: string, now: () => Date): Promise<TenantTickResult> {
    const result: TenantTickResult = { tenant, ran: true, pulled: 0, retrained: null };
    const errors: string[] = [];
    // Detection and the retrain check fail separately: Loki being down must not stop retraining.
    try {
      if (this.loki.queryBase) result.pulled = await this.pullFromLoki(tenant, now());
    } catch (e) {
      errors.push(`pull from Loki: ${(e as Error).message}`);
    }
    try {
      const reason = await this.retrain.due(tenant, now());
      if (reason) {
        const o = await this.retrain.retrain(tenant, reason);
        result.retrained = { version: o.version, status: o.status, reason };
      }
    } catch (e) {
      errors.push(`retrain: ${(e as Error).message}`);
    }
    if (errors.length) result.error = errors.join('; ');
    return result;
  }

  /**
   * Scores the tenant's lines that reached Loki since its cursor and were not ours. Entry ids come
   * from stream, timestamp and line, so re-reading the cursor's own timestamp stores nothing twice.
   */
  private async pullFromLoki(tenant: string, now: Date): Promise<number> {
    const state = await this.state.get(tenant);
    const endNs = BigInt(now.getTime()) * 1_000_000n;
    const startNs = state.lokiCursorNs ?? endNs - BigInt(this.config.detectionIntervalSeconds) * 1_000_000_000n;
    const query = (this.config.lokiDetectionQuery ?? this.config.lokiTrainingQuery).replaceAll('{tenant}', tenant);
    const entries = await this.loki.queryRange(tenant, query, startNs, endNs);
    const items: Record<string, unknown>[] = [];
    let cursor = startNs;
    for (const e of entries) {
      if (e.tsNs > cursor) cursor = e.tsNs;
      if (OWN_SOURCES.has(e.labels.source ?? '') || e.labels.stream === this.config.metricsStream) continue;
      let item: unknown;
      try {
        item = JSON.parse(e.line);
      } catch {
        continue;
      }
      if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
      const obj = item as Record<string, unknown>;
      if (obj.service === undefined) obj.service = e.labels.service ?? e.labels.service_name ?? e.labels.app ?? e.labels.job;
      if (obj.timestamp === undefined) obj.timestamp = new Date(Number(e.tsNs / 1_000_000n)).toISOString();
      if (obj.id === undefined) {
        obj.id = `lq-${createHash('sha256').update(formatLabels(e.labels)).update('\u0000').update(e.tsNs.toString()).update('\u0000').update(e.line).digest('hex').slice(0, 40)}`;
      }
      items.push(obj);
    }
    for (let i = 0; i < items.length; i += this.config.ingestMaxItems) {
      await this.ingestion.ingest(tenant, items.slice(i, i + this.config.ingestMaxItems), undefined, 'scheduler');
    }
    await this.state.setLokiCursor(tenant, cursor);
    return items.length;
  }
}
