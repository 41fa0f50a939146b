import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { createHash } from 'crypto';
import { Counter } from 'prom-client';
import { AppConfig } from '../../../config/app-config';
import { AppException } from '../../../common/errors/app.exception';
import { ErrorCode, ErrorDetail } from '../../../common/errors/error-code';
import { timeWindowReason, unstorableDateReason } from '../../../common/validation/storable';
import { IngestionService } from '../ingestion.service';
import { parseLogLine } from './log-line.parser';
import {
  decodePushJson,
  decodePushProtobuf,
  DecodedStream,
  findDuplicateStreamLabels,
  LokiBodyTooLargeError,
  LokiPushError,
  LokiTooManyEntriesError,
  snappyDecode,
} from './loki-push.codec';
import { LOKI_INTAKE_LINES } from './loki.metrics';
import { fitMetadata } from './metadata-budget';

export interface IntakeResult {
  accepted: number;
  rejected: number;
  /** Lines stored with some of their text cut (over LOKI_MAX_LINE_BYTES or INGEST_MAX_METADATA_BYTES). */
  truncated: number;
  /** Loki's 400 message for the rejected entries (empty when all were accepted). */
  message: string;
  /** One detail per rejected stream or entry (the first 100). */
  details: ErrorDetail[];
}

/** Far outside any date: entry timestamps beyond these are not even turned into a Date. */
const MIN_MS = -8_640_000_000_000_000n;
const MAX_MS = 8_640_000_000_000_000n;
const MAX_DETAILS = 100;
const MAX_MESSAGE_GROUPS = 20;

/** Cuts a line to at most `maxBytes` of UTF-8 without splitting a character. */
function truncateUtf8(line: string, maxBytes: number): string {
  const buf = Buffer.from(line, 'utf8');
  let end = maxBytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * Loki's way of putting many validation errors in one 400 (util.GroupedErrors): identical
 * messages grouped, `N errors like: ` in front when there is more than one message or one
 * several times, joined by "; ". Groups keep their first-seen order; past 20 groups the rest is
 * counted.
 */
export function groupErrors(messages: string[]): string {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m, (counts.get(m) ?? 0) + 1);
  const groups = [...counts];
  const parts = groups.slice(0, MAX_MESSAGE_GROUPS).map(([m, n]) => (groups.length > 1 || n > 1 ? `${n} errors like: ${m}` : m));
  if (groups.length > MAX_MESSAGE_GROUPS) parts.push(`and ${groups.length - MAX_MESSAGE_GROUPS} other errors`);
  return parts.join('; ');
}

/**
 * The Loki-compatible intake (`POST /loki/api/v1/push`), with Loki's push semantics: bodies in
 * JSON or protobuf, with `Content-Encoding` snappy, gzip or deflate (the last two are undone by the
 * body parser, within INGEST_MAX_BYTES); label sets checked per stream and entries per entry, so
 * a bad stream or entry is refused alone, the rest is stored and the 400 lists what was refused
 * in Loki's wording; lines over LOKI_MAX_LINE_BYTES truncated and flagged, never dropped. Each line
 * is read in whatever format it is in (see parseLogLine) and goes through the same validation and
 * scoring as POST /ingest, with `source = loki-push` so it is never shipped back. Each entry's id
 * derives from its stream, timestamp and line, so a shipper's retry stores nothing twice.
 */
@Injectable()
export class LokiIntakeService {
  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly ingestion: IngestionService,
    @InjectMetric(LOKI_INTAKE_LINES) private readonly lines: Counter<string>,
  ) {}

  /**
   * The streams of a push body.
   * @param contentType the request's Content-Type (JSON when empty)
   * @param contentEncoding the request's Content-Encoding; gzip and deflate were already undone
   * @param body the JSON body as the body parser read it (undefined for protobuf and snappy)
   * @param raw the body's bytes (after gzip/deflate)
   * @throws AppException 400 INVALID_BODY (unreadable), 413 PAYLOAD_TOO_LARGE (decompresses past
   *   INGEST_MAX_BYTES), 415 UNSUPPORTED_MEDIA_TYPE
   */
  decode(contentType: string, contentEncoding: string, body: unknown, raw: Buffer | undefined): DecodedStream[] {
    const type = contentType.split(';')[0].trim().toLowerCase();
    const snappy = contentEncoding.trim().toLowerCase() === 'snappy';
    try {
      if (type === 'application/x-protobuf' || type === 'application/protobuf') {
        if (!raw?.length) throw new LokiPushError('empty body');
        return decodePushProtobuf(snappyDecode(raw, this.config.ingestMaxBytes), this.config.ingestMaxItems);
      }
      if (type === 'application/json' || type === '' || type.endsWith('+json')) {
        let text = raw?.toString('utf8') ?? '';
        let value = body;
        if (snappy) {
          // Loki hands a JSON body marked snappy to its JSON reader as is; a client may also have
          // compressed it for real. Plain JSON first, then snappy.
          value = undefined;
          if (/^\s*\{/.test(text)) {
            try {
              value = JSON.parse(text);
            } catch {
              value = undefined;
            }
          }
          if (value === undefined) {
            text = snappyDecode(raw ?? Buffer.alloc(0), this.config.ingestMaxBytes).toString('utf8');
            try {
              value = JSON.parse(text);
            } catch (e) {
              throw new LokiPushError(`body is not valid JSON: ${(e as Error).message}`);
            }
          }
        }
        if (value === undefined) throw new LokiPushError('the body is empty');
        return decodePushJson(value, findDuplicateStreamLabels(text), this.config.ingestMaxItems);
      }
    } catch (e) {
      if (e instanceof LokiTooManyEntriesError) throw new AppException(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, e.message, [{ field: 'streams', reason: e.message }]);
      if (e instanceof LokiBodyTooLargeError) throw new AppException(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, e.message, [{ field: 'body', reason: e.message }]);
      if (e instanceof LokiPushError) throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, e.message, [{ field: 'body', reason: e.message }]);
      throw e;
    }
    throw new AppException(
      HttpStatus.UNSUPPORTED_MEDIA_TYPE,
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `Content-Type ${type} is not supported: use application/json or application/x-protobuf (snappy)`,
    );
  }

  /**
   * Validates, reads, scores and stores the entries of a decoded push.
   * @throws AppException 413 when the push holds more than INGEST_MAX_ITEMS entries
   */
  async push(tenantId: string, streams: DecodedStream[], now = new Date()): Promise<IntakeResult> {
    const total = streams.reduce((n, s) => n + s.entries.length, 0);
    if (total > this.config.ingestMaxItems) {
      throw new AppException(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, `The push holds ${total} entries, over INGEST_MAX_ITEMS (${this.config.ingestMaxItems})`);
    }
    const items: Record<string, unknown>[] = [];
    const where: { field: string; labelText: string; tsNs: string }[] = [];
    const messages: string[] = [];
    const details: ErrorDetail[] = [];
    const refuse = (field: string, message: string) => {
      messages.push(message);
      if (details.length < MAX_DETAILS) details.push({ field, reason: message });
    };
    let rejected = 0;
    let truncated = 0;
    // The accepted window of entry times (INGEST_MAX_AGE_HOURS, INGEST_FUTURE_GRACE_SECONDS), shared with /ingest.
    const window = this.ingestion.eventWindow(now);
    streams.forEach((s, si) => {
      if (s.error !== undefined || !s.labels) {
        // Loki counts a refused label set once, whatever the number of its entries.
        if (s.entries.length) refuse(`streams[${si}]`, s.error ?? 'invalid labels');
        rejected += s.entries.length;
        return;
      }
      const labels = s.labels;
      s.entries.forEach((e, ei) => {
        const field = `streams[${si}].values[${ei}]`;
        if (!e.tsNs) {
          rejected++;
          refuse(field, `entry ${ei} of stream '${s.labelText}' must be ["<unix epoch in nanoseconds>", "<log line>"]`);
          return;
        }
        // Loki judges the entry's timestamp, in its words ("entry for stream '…' has timestamp too old: …").
        const ms = BigInt(e.tsNs) / 1_000_000n;
        const entryTime = new Date(ms < MIN_MS ? NaN : ms > MAX_MS ? NaN : Number(ms));
        const outside = Number.isNaN(entryTime.getTime())
          ? `${ms < 0n ? 'too old' : 'too new'}: ${e.tsNs} ns`
          : unstorableDateReason(entryTime)
            ? `${entryTime.getTime() < 0 ? 'too old' : 'too new'}: ${entryTime.toISOString()}`
            : timeWindowReason(entryTime, window);
        if (outside) {
          rejected++;
          refuse(field, `entry for stream '${s.labelText}' has timestamp ${outside}`);
          return;
        }
        let line = e.line;
        let lineBytes: number | undefined;
        if (line.length > this.config.lokiMaxLineBytes / 4 && Buffer.byteLength(line) > this.config.lokiMaxLineBytes && !/^\s*\{/.test(line)) {
          // JSON lines are read whole (their size is bounded by the body) and cut field by field
          // below; other formats carry their fields at the start, so the line itself is cut.
          lineBytes = Buffer.byteLength(line);
          line = truncateUtf8(line, this.config.lokiMaxLineBytes);
        }
        const { event } = parseLogLine(line, { labels, entryTime });
        const intake = event.intake as Record<string, unknown>;
        if (e.metadata) event.structured_metadata = e.metadata;
        event.id = `lp-${createHash('sha256').update(s.labelText).update('\u0000').update(e.tsNs).update('\u0000').update(e.line).digest('hex').slice(0, 40)}`;
        const fitted = fitMetadata(event, this.config.ingestMaxMetadataBytes);
        if (lineBytes !== undefined || fitted) {
          intake.truncated = { ...(lineBytes !== undefined && { line_bytes: lineBytes, kept_bytes: this.config.lokiMaxLineBytes }), ...fitted };
          truncated++;
        }
        items.push(event);
        where.push({ field, labelText: s.labelText, tsNs: e.tsNs });
      });
    });
    let accepted = 0;
    if (items.length) {
      const envelope = await this.ingestion.ingest(tenantId, items, undefined, 'loki-push');
      for (const r of envelope.results) {
        if (r.status === 'accepted') {
          accepted++;
          continue;
        }
        rejected++;
        const w = where[r.index];
        refuse(w.field, `entry for stream '${w.labelText}' with timestamp ${w.tsNs} refused: ${r.errors.map((x) => `${x.field} ${x.reason}`).join(', ')}`);
      }
    }
    if (accepted) this.lines.inc({ tenant: tenantId, outcome: 'accepted' }, accepted);
    if (rejected) this.lines.inc({ tenant: tenantId, outcome: 'rejected' }, rejected);
    if (truncated) this.lines.inc({ tenant: tenantId, outcome: 'truncated' }, truncated);
    return { accepted, rejected, truncated, message: messages.length ? groupErrors(messages) : '', details };
  }
}
