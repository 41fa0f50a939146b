import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'crypto';
import { AppConfig } from '../../config/app-config';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';
import { DetectionService, EventDetection, IncomingEvent } from '../detection/detection.service';
import { FieldError, parseLogEvent } from '../detection/features/log-event';
import { TimeWindow } from '../../common/validation/storable';

export type ItemResult =
  | { index: number; status: 'accepted'; id: string; detection: EventDetection }
  | { index: number; status: 'rejected'; errors: FieldError[] };

export interface IngestEnvelope {
  accepted: number;
  rejected: number;
  results: ItemResult[];
}

/** A body item that could not even be read (a broken NDJSON line). */
const UNREADABLE = Symbol('unreadable');
type RawItem = unknown | typeof UNREADABLE;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * POST /ingest: reads the body (one event, a JSON array, or NDJSON), validates every item on its
 * own, and hands the valid ones to detection in one batch. A rejected item never blocks the rest.
 */
@Injectable()
export class IngestionService {
  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly detection: DetectionService,
  ) {}

  /** The items of a request body. @throws AppException 400 INVALID_BODY / 413 / 415. */
  readItems(contentType: string, body: unknown, raw: Buffer | undefined): RawItem[] {
    const type = contentType.split(';')[0].trim().toLowerCase();
    let items: RawItem[];
    if (type === 'application/x-ndjson' || type === 'application/jsonl' || type === 'application/jsonlines') {
      const text = raw?.toString('utf8') ?? '';
      items = [];
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        try {
          items.push(JSON.parse(line));
        } catch {
          items.push(UNREADABLE);
        }
        if (items.length > this.config.ingestMaxItems) break;
      }
    } else if (type === '' || type === 'application/json' || type.endsWith('+json')) {
      if (body === undefined) throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, 'The body is empty');
      if (Array.isArray(body)) items = body;
      else if (typeof body === 'object' && body !== null) items = [body];
      else throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, 'The body must be an event object or an array of events');
    } else {
      throw new AppException(
        HttpStatus.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        `Content-Type ${type} is not supported: use application/json or application/x-ndjson`,
      );
    }
    if (items.length > this.config.ingestMaxItems) {
      throw new AppException(
        HttpStatus.PAYLOAD_TOO_LARGE,
        ErrorCode.PAYLOAD_TOO_LARGE,
        `The body holds more than ${this.config.ingestMaxItems} items (INGEST_MAX_ITEMS)`,
      );
    }
    if (!items.length) throw AppException.validation([{ field: 'body', reason: 'holds no events' }]);
    return items;
  }

  /**
   * The accepted window of live event times as of now (INGEST_MAX_AGE_HOURS back,
   * INGEST_FUTURE_GRACE_SECONDS ahead), for {@link parseLogEvent}'s `window` option.
   */
  eventWindow(now = new Date()): TimeWindow {
    return { now, maxAgeMs: this.config.ingestMaxAgeHours * 3600_000, futureGraceMs: this.config.ingestFutureGraceSeconds * 1000 };
  }

  async ingest(tenantId: string, items: RawItem[], idempotencyKey: string | undefined, source = 'api'): Promise<IngestEnvelope> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw AppException.validation([{ field: 'Idempotency-Key', reason: 'must be 1-128 printable ASCII characters' }]);
    }
    const keyPrefix = idempotencyKey ? `k-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}-` : undefined;
    const results: ItemResult[] = new Array(items.length);
    const incoming: IncomingEvent[] = [];
    const indexOf: number[] = [];
    const firstIndexOfId = new Map<string, number>();
    const duplicateOf = new Map<number, number>();
    const rejectReasons: string[] = [];
    const options = { maxMetadataBytes: this.config.ingestMaxMetadataBytes, window: this.eventWindow() };
    items.forEach((item, index) => {
      if (item === UNREADABLE) {
        results[index] = { index, status: 'rejected', errors: [{ field: '(line)', reason: 'is not valid JSON' }] };
        rejectReasons.push('(line)');
        return;
      }
      const parsed = parseLogEvent(item, options);
      if (!parsed.ok) {
        results[index] = { index, status: 'rejected', errors: parsed.errors };
        rejectReasons.push(parsed.errors[0].field);
        return;
      }
      // The item's own id, else one derived from the request's Idempotency-Key and the position,
      // so that a retried request maps each item to the row it stored the first time.
      const id = parsed.event.id ?? (keyPrefix ? `${keyPrefix}${index}` : randomUUID());
      const first = firstIndexOfId.get(id);
      if (first !== undefined) {
        duplicateOf.set(index, first); // the same id twice in one body is one event
        return;
      }
      firstIndexOfId.set(id, index);
      incoming.push({ id, event: parsed.event });
      indexOf.push(index);
    });
    this.detection.countRejected(tenantId, rejectReasons, source);

    const detections = await this.detection.process(tenantId, incoming, source);
    incoming.forEach((inc, k) => {
      results[indexOf[k]] = { index: indexOf[k], status: 'accepted', id: inc.id, detection: detections[k] };
    });
    for (const [index, first] of duplicateOf) results[index] = { ...results[first], index };
    const accepted = results.filter((r) => r.status === 'accepted').length;
    return { accepted, rejected: results.length - accepted, results };
  }
}
