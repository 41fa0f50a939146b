import { HttpStatus, Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'crypto';
import { AppConfig } from '../../../config/app-config';
import { AppException } from '../../../common/errors/app.exception';
import { ErrorCode } from '../../../common/errors/error-code';
import { LokiClient } from '../../ingestion/loki/loki.client';
import { ModelRegistryService } from '../../retrain/model-registry.service';
import { ReplayJobRepository, ReplayJobRow } from '../../store/replay-job.repository';
import { LogEvent, parseLogEvent } from '../features/log-event';
import { ReplayEngine, replaySettingsOf, seriesMinutes } from './replay-engine';
import { TimeSlicer } from '../../../common/time-slicer';
import { parseStorableDate } from '../../../common/validation/storable';
import { renderReplayReport } from './replay-report';

export interface ReplayRequest {
  events?: unknown[];
  loki?: { query?: string; start: string; end: string };
  report?: boolean;
}

const BATCH = 1000;
const DAY = 86_400_000;

interface ParsedEvents {
  events: LogEvent[];
  rejected: number;
}

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

  /**
   * Validates the request, creates the job and starts it; returns the job id. Events given in the
   * body are read here (yielding the event loop as it goes) so that a replay over the limits is
   * refused at once: more than REPLAY_MAX_EVENTS events → 413; event time spanning more than
   * REPLAY_MAX_SPAN_DAYS, or more than REPLAY_MAX_SERIES_MINUTES service-minutes → 400.
   */
  async start(tenantId: string, req: ReplayRequest): Promise<string> {
    if (!req.events === !req.loki) {
      throw AppException.validation([{ field: 'events', reason: 'give either events or a loki range, not both or neither' }]);
    }
    let parsed: ParsedEvents | undefined;
    if (req.events) {
      if (req.events.length > this.config.replayMaxEvents) {
        throw new AppException(
          HttpStatus.PAYLOAD_TOO_LARGE,
          ErrorCode.PAYLOAD_TOO_LARGE,
          `The replay holds ${req.events.length} events, over REPLAY_MAX_EVENTS (${this.config.replayMaxEvents})`,
          [{ field: 'events', reason: `holds more than ${this.config.replayMaxEvents} events` }],
        );
      }
      parsed = await this.parse(req.events);
      const problem = this.sizeProblem(parsed.events);
      if (problem) throw AppException.validation([{ field: 'events', reason: problem }]);
    }
    if (req.loki) {
      const start = parseStorableDate(req.loki.start);
      const end = parseStorableDate(req.loki.end);
      if (!start.ok) throw AppException.validation([{ field: 'loki.start', reason: start.reason }]);
      if (!end.ok || end.date <= start.date) throw AppException.validation([{ field: 'loki.end', reason: 'must be an ISO 8601 date-time after loki.start' }]);
      if (end.date.getTime() - start.date.getTime() > this.config.replayMaxSpanDays * DAY) {
        throw AppException.validation([{ field: 'loki.end', reason: `must be at most ${this.config.replayMaxSpanDays} days after loki.start (REPLAY_MAX_SPAN_DAYS)` }]);
      }
      if (!this.loki.queryBase) throw new AppException(HttpStatus.UNPROCESSABLE_ENTITY, ErrorCode.VALIDATION_FAILED, 'Loki is not configured', [{ field: 'loki', reason: 'LOKI_QUERY_URL / LOKI_PUSH_URL is not set' }]);
    }
    const id = randomUUID();
    await this.jobs.create(tenantId, id, req.events ? 'events' : 'loki', req.events?.length ?? 0);
    const run = this.run(tenantId, id, req, parsed).finally(() => this.running.delete(run));
    this.running.add(run);
    return id;
  }

  /** Items validated as events (no time window: history), yielding the event loop every few ms. */
  private async parse(items: readonly unknown[]): Promise<ParsedEvents> {
    const slicer = new TimeSlicer();
    const events: LogEvent[] = [];
    let rejected = 0;
    for (const item of items) {
      await slicer.yield();
      const p = parseLogEvent(item, { maxMetadataBytes: this.config.ingestMaxMetadataBytes });
      if (p.ok) events.push(p.event);
      else rejected++;
    }
    return { events, rejected };
  }

  /** Why these events make a replay over the limits, or undefined. */
  private sizeProblem(events: readonly LogEvent[]): string | undefined {
    if (events.length > this.config.replayMaxEvents) return `holds more than ${this.config.replayMaxEvents} events (REPLAY_MAX_EVENTS)`;
    const { spanMs, serviceMinutes } = seriesMinutes(events);
    if (spanMs > this.config.replayMaxSpanDays * DAY) {
      return `span ${(spanMs / DAY).toFixed(1)} days of event time, over REPLAY_MAX_SPAN_DAYS (${this.config.replayMaxSpanDays})`;
    }
    if (serviceMinutes > this.config.replayMaxSeriesMinutes) {
      return `make ${serviceMinutes} service-minutes of series, over REPLAY_MAX_SERIES_MINUTES (${this.config.replayMaxSeriesMinutes})`;
    }
    return undefined;
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

  private async run(tenantId: string, id: string, req: ReplayRequest, parsed?: ParsedEvents): Promise<void> {
    try {
      await this.jobs.start(tenantId, id);
      const { events, rejected } = parsed ?? (await this.parse(await this.fromLoki(tenantId, req.loki!)));
      const problem = parsed ? undefined : this.sizeProblem(events);
      if (problem) throw new Error(`the events of the Loki range ${problem}`);
      events.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
      await this.jobs.progress(tenantId, id, 0, events.length);
      const active = await this.registry.active(tenantId);
      const engine = new ReplayEngine(active?.model ?? null, active?.version ?? null, replaySettingsOf(this.config));
      for (let i = 0; i < events.length; i += BATCH) {
        engine.addEvents(events.slice(i, i + BATCH));
        await this.jobs.progress(tenantId, id, Math.min(events.length, i + BATCH));
      }
      const traces = await engine.finish();
      const summary = { ...engine.counts, rejected, model_version: active?.version ?? null, services: traces.length, incident_list: engine.incidents };
      const spans = engine.incidents.map((i) => ({
        service: i.service,
        start: Date.parse(i.started_at),
        end: Date.parse(i.ended_at ?? i.last_evidence_at) + (i.ended_at ? 0 : 60_000),
        label: `${i.severity}: ${i.signals.map((x) => x.signal).join(', ')}`,
      }));
      const report = req.report ? renderReplayReport(`Replay ${id} (tenant ${tenantId})`, traces, engine.detections, summary, spans) : null;
      await this.jobs.finish(tenantId, id, summary, engine.detections, report);
    } catch (e) {
      this.logger.error(`replay ${id} of tenant ${tenantId} failed: ${(e as Error).message}`);
      await this.jobs.fail(tenantId, id, (e as Error).message).catch(() => undefined);
    }
  }

  private async fromLoki(tenantId: string, range: NonNullable<ReplayRequest['loki']>): Promise<unknown[]> {
    const query = (range.query ?? this.config.lokiTrainingQuery).replaceAll('{tenant}', tenantId);
    const entries = await this.loki.queryRange(tenantId, query, BigInt(Date.parse(range.start)) * 1_000_000n, BigInt(Date.parse(range.end)) * 1_000_000n);
    if (entries.length > this.config.replayMaxEvents) throw new Error(`the Loki range holds more than ${this.config.replayMaxEvents} entries (REPLAY_MAX_EVENTS)`);
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
