import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { createHash } from 'crypto';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { IngestionService } from '../ingestion/ingestion.service';
import { formatLabels } from '../ingestion/loki/loki-push.codec';
import { LokiClient } from '../ingestion/loki/loki.client';
import { RetrainStateRepository } from '../store/retrain-state.repository';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { RetrainService } from './retrain.service';
import { SCHEDULER_JOBS } from './retrain.metrics';

const INTERVAL_NAME = 'detection-and-retrain';
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
 * tenant's job holds a PostgreSQL advisory lock, so with several replicas (or the CLI scheduler
 * next to the service) it runs once per tick; one tenant's failure never stops the others.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SchedulerService.name);
  private running?: Promise<TenantTickResult[]>;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly retrain: RetrainService,
    private readonly ingestion: IngestionService,
    private readonly loki: LokiClient,
    private readonly state: RetrainStateRepository,
    private readonly schedules: SchedulerRegistry,
    @InjectMetric(SCHEDULER_JOBS) private readonly jobs: Counter<string>,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.schedulerEnabled) this.start();
  }

  /** Starts the periodic loop (the service does at boot; the CLI scheduler too unless --once). */
  start(): void {
    if (this.schedules.doesExist('interval', INTERVAL_NAME)) return;
    const timer = setInterval(() => void this.tick().catch(() => undefined), this.config.detectionIntervalSeconds * 1000);
    timer.unref();
    this.schedules.addInterval(INTERVAL_NAME, timer);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.schedules.doesExist('interval', INTERVAL_NAME)) this.schedules.deleteInterval(INTERVAL_NAME);
    await this.running?.catch(() => undefined);
  }

  /** One pass over `tenants` (default: all); overlapping ticks in one process are skipped. */
  async tick(tenants = this.tenants.list(), now = () => new Date()): Promise<TenantTickResult[]> {
    if (this.running) return [];
    this.running = (async () => {
      const results: TenantTickResult[] = [];
      for (const tenant of tenants) results.push(await this.runTenant(tenant, now));
      return results;
    })();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async runTenant(tenant: string, now: () => Date): Promise<TenantTickResult> {
    try {
      const r = await this.state.withTenantLock(tenant, 'scheduler', async () => {
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
      });
      if (!r.ran) {
        this.jobs.inc({ tenant, outcome: 'skipped' });
        return { tenant, ran: false };
      }
      this.jobs.inc({ tenant, outcome: r.value.error ? 'failed' : 'ran' });
      if (r.value.error) this.logger.error(`scheduler job of tenant ${tenant} failed: ${r.value.error}`);
      return r.value;
    } catch (e) {
      this.jobs.inc({ tenant, outcome: 'failed' });
      this.logger.error(`scheduler job of tenant ${tenant} failed: ${(e as Error).message}`);
      return { tenant, ran: true, error: (e as Error).message };
    }
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
