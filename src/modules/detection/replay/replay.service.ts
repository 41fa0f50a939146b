import { HttpStatus, Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'crypto';
import { AppConfig } from '../../../config/app-config';
import { AppException } from '../../../common/errors/app.exception';
import { ErrorCode } from '../../../common/errors/error-code';
import { LokiClient } from '../../ingestion/loki/loki.client';
import { ModelRegistryService } from '../../retrain/model-registry.service';
import { ReplayJobRepository, ReplayJobRow } from '../../store/replay-job.repository';
import { LogEvent, parseLogEvent } from '../features/log-event';
import { ReplayEngine, replaySettingsOf } from './replay-engine';
import { renderReplayReport } from './replay-report';

export interface ReplayRequest {
  events?: unknown[];
  loki?: { query?: string; start: string; end: string };
  report?: boolean;
}

const BATCH = 1000;

/**
 * Backtests as jobs: events from the request body or a Loki time range, replayed through event
 * and series detection with progress; results (and an optional HTML report) stay with the job. A
 * job runs in the replica that accepted it; one whose process died is marked failed.
 */
@Injectable()
export class ReplayService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(ReplayService.name);
  private readonly running = new Set<Promise<void>>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly jobs: ReplayJobRepository,
    private readonly registry: ModelRegistryService,
    private readonly loki: LokiClient,
  ) {}

  onModuleInit(): void {
    this.sweeper = setInterval(() => void this.jobs.failAbandonedAllTenants().catch(() => undefined), 60_000);
    this.sweeper.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.running]);
  }

  /** Validates the request, creates the job and starts it; returns the job id. */
  async start(tenantId: string, req: ReplayRequest): Promise<string> {
    if (!req.events === !req.loki) {
      throw AppException.validation([{ field: 'events', reason: 'give either events or a loki range, not both or neither' }]);
    }
    if (req.loki) {
      const start = Date.parse(req.loki.start);
      const end = Date.parse(req.loki.end);
      if (Number.isNaN(start)) throw AppException.validation([{ field: 'loki.start', reason: 'must be an ISO 8601 date-time' }]);
      if (Number.isNaN(end) || end <= start) throw AppException.validation([{ field: 'loki.end', reason: 'must be an ISO 8601 date-time after loki.start' }]);
      if (!this.loki.queryBase) throw new AppException(HttpStatus.UNPROCESSABLE_ENTITY, ErrorCode.VALIDATION_FAILED, 'Loki is not configured', [{ field: 'loki', reason: 'LOKI_QUERY_URL / LOKI_PUSH_URL is not set' }]);
    }
    const id = randomUUID();
    await this.jobs.create(tenantId, id, req.events ? 'events' : 'loki', req.events?.length ?? 0);
    const run = this.run(tenantId, id, req).finally(() => this.running.delete(run));
    this.running.add(run);
    return id;
  }

  /** Waits for the jobs running in this process (tests). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  find(tenantId: string, id: string): Promise<ReplayJobRow | null> {
    return this.jobs.find(tenantId, id);
  }

  report(tenantId: string, id: string): Promise<string | null> {
    return this.jobs.report(tenantId, id);
  }

  private async run(tenantId: string, id: string, req: ReplayRequest): Promise<void> {
    try {
      await this.jobs.start(tenantId, id);
      const raw = req.events ?? (await this.fromLoki(tenantId, req.loki!));
      const events: LogEvent[] = [];
      let rejected = 0;
      for (const item of raw) {
        const parsed = parseLogEvent(item, { maxMetadataBytes: this.config.ingestMaxMetadataBytes });
        if (parsed.ok) events.push(parsed.event);
        else rejected++;
      }
      events.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
      await this.jobs.progress(tenantId, id, 0, events.length);
      const active = await this.registry.active(tenantId);
      const engine = new ReplayEngine(active?.model ?? null, active?.version ?? null, replaySettingsOf(this.config));
      for (let i = 0; i < events.length; i += BATCH) {
        engine.addEvents(events.slice(i, i + BATCH));
        await this.jobs.progress(tenantId, id, Math.min(events.length, i + BATCH));
      }
      const traces = engine.finish();
      const summary = { ...engine.counts, rejected, model_version: active?.version ?? null, services: traces.length, incident_list: engine.incidents };
      const report = req.report ? renderReplayReport(`Replay ${id} (tenant ${tenantId})`, traces, engine.detections, summary) : null;
      await this.jobs.finish(tenantId, id, summary, engine.detections, report);
    } catch (e) {
      this.logger.error(`replay ${id} of tenant ${tenantId} failed: ${(e as Error).message}`);
      await this.jobs.fail(tenantId, id, (e as Error).message).catch(() => undefined);
    }
  }

  private async fromLoki(tenantId: string, range: NonNullable<ReplayRequest['loki']>): Promise<unknown[]> {
    const query = (range.query ?? this.config.lokiTrainingQuery).replaceAll('{tenant}', tenantId);
    const entries = await this.loki.queryRange(tenantId, query, BigInt(Date.parse(range.start)) * 1_000_000n, BigInt(Date.parse(range.end)) * 1_000_000n);
    const items: unknown[] = [];
    for (const e of entries) {
      try {
        const obj = JSON.parse(e.line) as Record<string, unknown>;
        if (typeof obj !== 'object' || obj === null) continue;
        obj.service ??= e.labels.service;
        obj.timestamp ??= new Date(Number(e.tsNs / 1_000_000n)).toISOString();
        items.push(obj);
      } catch {
        /* not an event line */
      }
    }
    return items;
  }
}
