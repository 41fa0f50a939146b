import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { createHash } from 'crypto';
import { Counter } from 'prom-client';
import { AppConfig } from '../../../config/app-config';
import { AppException } from '../../../common/errors/app.exception';
import { ErrorCode } from '../../../common/errors/error-code';
import { IngestionService } from '../ingestion.service';
import { decodePushJson, decodePushProtobuf, formatLabels, LokiPushError, PushStream, snappyDecode } from './loki-push.codec';
import { LOKI_INTAKE_LINES } from './loki.metrics';

/** Labels that name the service when a line does not, in order of preference. */
const SERVICE_LABELS = ['service', 'service_name', 'app', 'job', 'container'];
const SERVICE = /^[A-Za-z0-9_.-]{1,128}$/;

export interface IntakeResult {
  accepted: number;
  rejected: number;
  /** Loki-style message about rejected lines (empty when all were accepted). */
  message: string;
}

/**
 * The Loki-compatible intake: decodes what Promtail / Alloy / Loki clients push (JSON, or protobuf
 * compressed with snappy) and sends every JSON line through the same path as POST /ingest, with
 * `source = loki-push` so it is never shipped back. Each entry's id derives from its stream,
 * timestamp and line, so a shipper's retry stores nothing twice.
 */
@Injectable()
export class LokiIntakeService {
  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly ingestion: IngestionService,
    @InjectMetric(LOKI_INTAKE_LINES) private readonly lines: Counter<string>,
  ) {}

  decode(contentType: string, body: unknown, raw: Buffer | undefined): PushStream[] {
    const type = contentType.split(';')[0].trim().toLowerCase();
    try {
      if (type === 'application/x-protobuf') {
        if (!raw?.length) throw new LokiPushError('empty body');
        return decodePushProtobuf(snappyDecode(raw, this.config.ingestMaxBytes));
      }
      if (type === 'application/json' || type === '') return decodePushJson(body);
    } catch (e) {
      if (e instanceof LokiPushError) throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, e.message);
      throw e;
    }
    throw new AppException(
      HttpStatus.UNSUPPORTED_MEDIA_TYPE,
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `Content-Type ${type} is not supported: use application/json or application/x-protobuf (snappy)`,
    );
  }

  async push(tenantId: string, streams: PushStream[]): Promise<IntakeResult> {
    const total = streams.reduce((n, s) => n + s.entries.length, 0);
    if (total > this.config.ingestMaxItems) {
      throw new AppException(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, `The push holds ${total} entries, over INGEST_MAX_ITEMS (${this.config.ingestMaxItems})`);
    }
    const items: Record<string, unknown>[] = [];
    const where: string[] = [];
    const problems: string[] = [];
    let rejected = 0;
    for (const s of streams) {
      const labelText = formatLabels(s.labels);
      const labelService = SERVICE_LABELS.map((l) => s.labels[l]).find((v) => v !== undefined && SERVICE.test(v));
      s.entries.forEach((e, i) => {
        let item: unknown;
        try {
          item = JSON.parse(e.line);
        } catch {
          item = undefined;
        }
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          rejected++;
          if (problems.length < 5) problems.push(`entry ${i} of stream ${labelText}: line is not a JSON object`);
          return;
        }
        const event = item as Record<string, unknown>;
        if (event.service === undefined && labelService) event.service = labelService;
        if (event.timestamp === undefined) event.timestamp = new Date(Number(BigInt(e.tsNs) / 1_000_000n)).toISOString();
        if (event.id === undefined) {
          event.id = `lp-${createHash('sha256').update(labelText).update('\u0000').update(e.tsNs).update('\u0000').update(e.line).digest('hex').slice(0, 40)}`;
        }
        items.push(event);
        where.push(`entry ${i} of stream ${labelText}`);
      });
    }
    let accepted = 0;
    if (items.length) {
      const envelope = await this.ingestion.ingest(tenantId, items, undefined, 'loki-push');
      for (const r of envelope.results) {
        if (r.status === 'accepted') accepted++;
        else {
          rejected++;
          if (problems.length < 5) problems.push(`${where[r.index]}: ${r.errors.map((x) => `${x.field} ${x.reason}`).join(', ')}`);
        }
      }
    }
    if (accepted) this.lines.inc({ tenant: tenantId, outcome: 'accepted' }, accepted);
    if (rejected) this.lines.inc({ tenant: tenantId, outcome: 'rejected' }, rejected);
    const message = rejected ? `${rejected} of ${total} entries rejected: ${problems.join('; ')}` : '';
    return { accepted, rejected, message };
  }
}
