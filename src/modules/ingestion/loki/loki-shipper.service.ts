import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Counter, Gauge } from 'prom-client';
import { AppConfig } from '../../../config/app-config';
import { PeriodicJob } from '../../../common/periodic-job';
import { DetectionRow, OutboxEvent, OutboxRepository } from '../../store/event.repository';
import { TenantRegistry } from '../../tenancy/tenant-registry.service';
import { PushStream } from './loki-push.codec';
import { LokiClient } from './loki.client';
import { LOKI_BACKLOG, LOKI_OLDEST_AGE, LOKI_PUSH_FAILURES, LOKI_SHIPPED } from './loki.metrics';

const BATCH = 1000;
const MAX_BACKOFF_MS = 60_000;
/** Lines built between two turns of the event loop (≈ 1 ms of work). */
const LINES_PER_TURN = 100;

const toNs = (d: Date) => (BigInt(d.getTime()) * 1_000_000n).toString();

/**
 * Ships accepted events and anomaly records to Loki from the durable outbox (`shipped_at` on
 * events and detections), tenant by tenant, in batches. Loki down → rows stay in the outbox and
 * go out when it is back; 429/5xx/timeouts back off exponentially with jitter (or as Retry-After
 * says); a permanent refusal (e.g. entries too old) is recorded on the rows and not retried.
 * Replicas never ship the same rows (row locks, SKIP LOCKED). A crash after Loki accepted a batch
 * but before the marker committed re-sends it; Loki drops exact duplicates (same stream,
 * timestamp and line), so each entry is stored once.
 */
@Injectable()
export class LokiShipperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LokiShipperService.name);
  private readonly backoff = new Map<string, { attempts: number; until: number }>();
  private job?: PeriodicJob;
  private stopped = false;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly client: LokiClient,
    private readonly outbox: OutboxRepository,
    private readonly tenants: TenantRegistry,
    @InjectMetric(LOKI_BACKLOG) private readonly backlogGauge: Gauge<string>,
    @InjectMetric(LOKI_OLDEST_AGE) private readonly ageGauge: Gauge<string>,
    @InjectMetric(LOKI_SHIPPED) private readonly shipped: Counter<string>,
    @InjectMetric(LOKI_PUSH_FAILURES) private readonly failures: Counter<string>,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.client.pushConfigured || this.config.lokiShipIntervalMs === 0) return;
    this.job = new PeriodicJob(this.config.lokiShipIntervalMs, () => this.runOnce()).start();
  }

  /** Stops between batches: a push in flight finishes and is marked shipped; the rest of the backlog waits. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    await this.job?.stop();
  }

  /** One pass over every tenant; a tenant's failure never stops the others. */
  async runOnce(now = () => Date.now()): Promise<void> {
    for (const tenant of this.tenants.list()) {
      if (this.stopped) return;
      const b = this.backoff.get(tenant);
      if (b && b.until > now()) continue;
      try {
        await this.shipTenant(tenant, now);
      } catch (e) {
        this.logger.warn(`shipping to Loki failed for tenant ${tenant}: ${(e as Error).message}`);
      }
      try {
        const { count, oldestAgeSeconds } = await this.outbox.backlog(tenant);
        this.backlogGauge.set({ tenant }, count);
        this.ageGauge.set({ tenant }, oldestAgeSeconds);
      } catch {
        /* the gauges keep their last value while the database is away */
      }
    }
  }

  private async shipTenant(tenant: string, now: () => number): Promise<void> {
    for (;;) {
      const r = await this.outbox.shipBatch(tenant, BATCH, async (events, detections) => {
        const outcome = await this.client.push(tenant, await this.streams(tenant, events, detections));
        if (outcome.kind === 'ok') return { kind: 'shipped' };
        if (outcome.kind === 'permanent') {
          this.logger.error(`Loki refused ${events.length + detections.length} entries of tenant ${tenant} (${outcome.status}): ${outcome.message}`);
          return { kind: 'refused', error: `${outcome.status}: ${outcome.message}` };
        }
        const prev = this.backoff.get(tenant)?.attempts ?? 0;
        const exp = Math.min(MAX_BACKOFF_MS, 500 * 2 ** prev) * (0.5 + Math.random());
        const wait = outcome.retryAfterMs !== undefined ? Math.max(outcome.retryAfterMs, 100) : exp;
        this.backoff.set(tenant, { attempts: prev + 1, until: now() + wait });
        this.failures.inc({ tenant, status: String(outcome.status ?? 'network') });
        this.logger.warn(`Loki push for tenant ${tenant} failed (${outcome.status ?? 'network'}: ${outcome.message}); retry in ${Math.round(wait)} ms`);
        return { kind: 'retry' };
      });
      if (!r.decision) return;
      if (r.decision.kind === 'retry') return;
      this.backoff.delete(tenant);
      this.shipped.inc({ tenant, outcome: r.decision.kind }, r.events + r.detections);
      if (r.events < BATCH && r.detections < BATCH) return;
      // Stopping: the batch just pushed is marked; the backlog waits for the next replica or start.
      if (this.stopped) return;
    }
  }

  /**
   * Label sets of SPEC §3; entries sorted by time within each stream. Gives the event loop back every
   * {@link LINES_PER_TURN} lines: a batch of 1,000 built in one go held requests for several ms.
   */
  private async streams(tenant: string, events: OutboxEvent[], detections: DetectionRow[]): Promise<PushStream[]> {
    const env = this.config.environment;
    const streams = new Map<string, PushStream>();
    const add = (labels: Record<string, string>, ts: Date, line: string) => {
      const key = JSON.stringify(labels);
      let s = streams.get(key);
      if (!s) streams.set(key, (s = { labels, entries: [] }));
      s.entries.push({ tsNs: toNs(ts), line });
    };
    let lines = 0;
    const turn = () => (++lines % LINES_PER_TURN === 0 ? new Promise<void>((resolve) => setImmediate(resolve)) : undefined);
    for (const e of events) {
      await turn();
      add({ tenant, service: e.service, env, source: e.source, stream: 'events' }, e.ts, JSON.stringify({
        id: e.id,
        timestamp: e.ts.toISOString(),
        service: e.service,
        ...e.metadata,
        score: e.score,
        prediction: e.prediction,
        model_version: e.modelVersion,
      }));
    }
    for (const d of detections) {
      await turn();
      add({ tenant, service: d.service, env, stream: this.config.metricsStream }, d.ts, JSON.stringify({
        id: d.id,
        kind: d.kind,
        event_id: d.eventId,
        timestamp: d.ts.toISOString(),
        service: d.service,
        score: d.score,
        prediction: d.prediction,
        model_version: d.modelVersion,
        drift_alert: d.driftAlert,
        duration_ms: d.durationMs,
        status_code: d.statusCode,
        summary: (d.explanation as { summary?: string } | null)?.summary,
        ...(d.kind === 'series' ? { metric: d.metric, value: d.value } : {}),
      }));
    }
    // Nanosecond timestamps as decimal strings without leading zeros: a shorter string is a smaller
    // number, and strings of one length compare as numbers (no BigInt per comparison: ~10,000 of them
    // for a batch of 1,000 held the event loop for milliseconds).
    const byTime = (a: { tsNs: string }, b: { tsNs: string }) => a.tsNs.length - b.tsNs.length || (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0);
    for (const s of streams.values()) s.entries.sort(byTime);
    return [...streams.values()];
  }
}
