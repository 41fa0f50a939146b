import { Inject, Injectable } from '@nestjs/common';
import { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import type { LogEvent } from '../detection/features/log-event';
import { MAX_DURATION_MS } from '../../common/validation/storable';
import { detectionFromRow } from './detection.repository';
import { DataSource } from 'typeorm';
import { AppConfig } from '../../config/app-config';

/**
 * SQL condition: a latency the series aggregation takes (finite, within what intake accepts). Intake
 * already refuses others; this keeps one bad stored row (an older build, a direct write) from
 * failing the series of a whole tenant, since a sketch cannot hold Infinity.
 */
export const LATENCY_IN_RANGE = (column: string) => `${column} >= 0 AND ${column} <= ${MAX_DURATION_MS}`;

/** Writes smaller than this (in events) are merged with the tenant's other writes of the same event-loop turn. */
const COALESCE_BELOW = 100;

/** A stored event's scoring fields as a {@link LogEvent} (metadata is not read back). */
function toLogEvent(r: Record<string, unknown>): LogEvent {
  const opt = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
  return {
    id: r.id as string,
    timestamp: r.ts as Date,
    service: r.service as string,
    durationMs: opt(r.duration_ms),
    statusCode: opt(r.status_code),
    bytes: opt(r.bytes),
    metadata: {},
  };
}

interface PendingWrite {
  events: EventRow[];
  detections: DetectionRow[];
  waiters: { events: EventRow[]; detections: DetectionRow[]; resolve: (ids: Set<string>) => void; reject: (e: unknown) => void }[];
}

/**
 * A statement failure caused by the rows it carried (data exception, constraint, program limit),
 * as opposed to the connection or the server's state: retrying the requests one by one then gives
 * each its own answer.
 */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|54|42|XX)/.test(code);
}

/** One accepted, scored event as stored. */
export interface EventRow {
  id: string;
  service: string;
  ts: Date;
  source: string;
  durationMs: number | null;
  statusCode: number | null;
  bytes: number | null;
  metadata: Record<string, unknown>;
  /** `metadata` already serialised, when available. */
  metadataJson?: string;
  score: number;
  prediction: number;
  modelVersion: number | null;
  /** Set when a cold-start baseline scored the event. */
  baseline: 'warming' | 'ready' | null;
  /** Queue it for Loki (false or absent: it came from Loki, or Loki is not configured). */
  ship?: boolean;
}

/** An anomaly as stored in `detections`. */
export interface DetectionRow {
  id: string;
  kind: 'event' | 'series';
  eventId: string | null;
  service: string;
  ts: Date;
  score: number;
  prediction: number;
  driftAlert: boolean;
  modelVersion: number | null;
  baseline: boolean;
  explanation: unknown;
  metadata: Record<string, unknown> | null;
  durationMs: number | null;
  statusCode: number | null;
  metric?: string | null;
  value?: number | null;
  expected?: number | null;
  likelihood?: number | null;
  feedback?: string | null;
  /** The incident this anomaly is part of (SPEC §8). */
  incidentId?: string | null;
  createdAt?: Date;
  /** Queue its anomaly record for Loki. */
  ship?: boolean;
}

export interface StoredResult {
  id: string;
  score: number;
  prediction: number;
  modelVersion: number | null;
  baseline: 'warming' | 'ready' | null;
  explanation: unknown;
}

/** Accepted events with their scores; the anomalies among them go to `detections` in the same transaction. */
@Injectable()
export class EventRepository {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  private readonly pending = new Map<string, PendingWrite>();

  /**
   * Stores events and their detections in one statement (so atomically, with one round trip and
   * one commit). Events whose id is already stored (a retry) are skipped, and so are their
   * detections. Returns the ids actually inserted. Resolves only after the commit.
   *
   * Small writes of one tenant requested in the same turn of the event loop (concurrent requests)
   * go out together as one statement: with many small requests the round trip and the commit, not
   * the rows, are the cost.
   */
  insertScored(tenantId: string, events: EventRow[], detections: DetectionRow[]): Promise<Set<string>> {
    if (!events.length) return Promise.resolve(new Set());
    // A large batch is its own statement: merged with others it would only take away the
    // parallelism of several database connections.
    if (events.length >= COALESCE_BELOW) {
      const copyFrom = this.config.ingestCopyMinEvents;
      return copyFrom > 0 && events.length >= copyFrom ? this.copyScored(tenantId, events, detections) : this.insertNow(tenantId, events, detections);
    }
    return new Promise((resolve, reject) => {
      let batch = this.pending.get(tenantId);
      if (!batch) {
        const created: PendingWrite = { events: [], detections: [], waiters: [] };
        this.pending.set(tenantId, created);
        setImmediate(() => void this.flush(tenantId, created));
        batch = created;
      }
      for (const e of events) batch.events.push(e);
      for (const d of detections) batch.detections.push(d);
      batch.waiters.push({ events, detections, resolve, reject });
    });
  }

  private async flush(tenantId: string, batch: PendingWrite): Promise<void> {
    this.pending.delete(tenantId);
    let inserted: Set<string>;
    try {
      inserted = await this.insertNow(tenantId, batch.events, batch.detections);
    } catch (e) {
      if (batch.waiters.length > 1 && isDataError(e)) {
        // One request's data failed the merged statement: each request is written on its own,
        // in arrival order, so the others succeed and only the faulty one gets the error.
        for (const w of batch.waiters) {
          await this.insertNow(tenantId, w.events, w.detections).then(w.resolve, w.reject);
        }
      } else {
        for (const w of batch.waiters) w.reject(e);
      }
      return;
    }
    // The same id from two concurrent requests was stored once: it is the first request's.
    const claimed = new Set<string>();
    for (const w of batch.waiters) {
      const mine = new Set<string>();
      for (const { id } of w.events) {
        if (inserted.has(id) && !claimed.has(id)) {
          claimed.add(id);
          mine.add(id);
        }
      }
      w.resolve(mine);
    }
  }

  /**
   * A large write through COPY (text format): PostgreSQL reads plain rows instead of parsing a
   * statement's JSON or parameters, about the cheapest way in short of not writing. COPY has no
   * ON CONFLICT, so it is optimistic: events, their series partials and their detections go in
   * one transaction, and when any event is already stored (a retry: unique violation on
   * the primary key `(tenant_id, ts, id)`) the transaction is rolled back and the write goes through
   * {@link insertNow}, which skips stored events. Resolves after the commit with the ids stored.
   */
  private async copyScored(tenantId: string, events: EventRow[], detections: DetectionRow[]): Promise<Set<string>> {
    const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const now = new Date().toISOString();
      let text = '';
      for (const e of events) {
        text +=
          `${copyText(tenantId)}\t${copyText(e.id)}\t${copyText(e.service)}\t${e.ts.toISOString()}\t${copyText(e.source)}\t` +
          `${e.durationMs ?? '\\N'}\t${e.statusCode ?? '\\N'}\t${e.bytes ?? '\\N'}\t${copyText(e.metadataJson ?? JSON.stringify(e.metadata))}\t` +
          `${e.score}\t${e.prediction}\t${e.modelVersion ?? '\\N'}\t${e.baseline ?? '\\N'}\t${e.ship === true ? '\\N' : now}\n`;
      }
      await pipeline(
        Readable.from([text]),
        client.query(
          copyFrom(
            `COPY events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version, baseline, shipped_at) FROM STDIN`,
          ),
        ),
      );
      await client.query({
        name: 'events-copy-partials-detections-v2',
        text: `WITH par AS (
                 INSERT INTO series_partials (tenant_id, service, minute, count, errors, latencies, max_ts, anomalies, bytes_n, bytes_log_sum,
                                             bytes_log_sq, bytes_log_max, bytes_log_min)
                 SELECT $1, p.service, p.minute, p.count, p.errors, p.latencies, p.max_ts, p.anomalies, p.bytes_n, p.bytes_log_sum,
                        p.bytes_log_sq, p.bytes_log_max, p.bytes_log_min
                   FROM jsonb_to_recordset($2::jsonb) AS p(service text, minute timestamptz, count int, errors int, latencies float8[],
                        max_ts timestamptz, anomalies int, bytes_n int, bytes_log_sum float8, bytes_log_sq float8, bytes_log_max float8,
                        bytes_log_min float8)
               ), det AS (${DETECTIONS_INSERT('$3')})
               SELECT 1`,
        values: [tenantId, partialsJson(events), detectionsJson(detections)],
      });
      await client.query('COMMIT');
      return new Set(events.map((e) => e.id));
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((e as { code?: string }).code !== '23505') throw e;
    } finally {
      client.release();
    }
    return this.insertNow(tenantId, events, detections);
  }

  private async insertNow(tenantId: string, events: EventRow[], detections: DetectionRow[]): Promise<Set<string>> {
    // The rows travel as one JSON document that PostgreSQL unpacks itself: much cheaper than
    // binding thousands of parameters or array literals, and the metadata JSON is spliced in as is.
    const rowsJson =
      '[' +
      events
        .map(
          (e) =>
            `{"id":${JSON.stringify(e.id)},"service":${JSON.stringify(e.service)},"ts":"${e.ts.toISOString()}",` +
            `"source":${JSON.stringify(e.source)},"duration_ms":${e.durationMs ?? 'null'},"status_code":${e.statusCode ?? 'null'},` +
            `"bytes":${e.bytes ?? 'null'},"metadata":${e.metadataJson ?? JSON.stringify(e.metadata)},"score":${e.score},` +
            `"prediction":${e.prediction},"model_version":${e.modelVersion ?? 'null'},"baseline":${e.baseline ? `"${e.baseline}"` : 'null'},` +
            `"ship":${e.ship === true}}`,
        )
        .join(',') +
      ']';
    // A named statement: PostgreSQL parses and plans it once per connection, not per request.
    const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
    const { rows } = await pool.query<{ id: string }>({
      name: 'events-insert-scored-v3',
      text: `WITH input AS (
         SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(id text, service text, ts timestamptz, source text, duration_ms float8,
           status_code int2, bytes int8, metadata jsonb, score float8, prediction int2, model_version int4, baseline text, ship bool)
       ), ins AS (
         INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version,
                             baseline, shipped_at)
         SELECT $1, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version,
                baseline, CASE WHEN ship THEN NULL ELSE now() END FROM input
         ON CONFLICT (tenant_id, id, ts) DO NOTHING
         RETURNING id, service, ts, duration_ms, status_code, bytes, prediction
       ), par AS (
         INSERT INTO series_partials (tenant_id, service, minute, count, errors, latencies, max_ts, anomalies, bytes_n, bytes_log_sum, bytes_log_sq,
                                     bytes_log_max, bytes_log_min)
         SELECT $1, service, date_trunc('minute', ts), COUNT(*), COUNT(*) FILTER (WHERE status_code >= 500),
                COALESCE(array_agg(duration_ms) FILTER (WHERE ${LATENCY_IN_RANGE('duration_ms')}), '{}'), MAX(ts),
                COUNT(*) FILTER (WHERE prediction = -1), COUNT(*) FILTER (WHERE bytes >= 0),
                COALESCE(SUM(ln(1 + bytes::float8)) FILTER (WHERE bytes >= 0), 0),
                COALESCE(SUM(ln(1 + bytes::float8) ^ 2) FILTER (WHERE bytes >= 0), 0),
                MAX(ln(1 + bytes::float8)) FILTER (WHERE bytes >= 0), MIN(ln(1 + bytes::float8)) FILTER (WHERE bytes >= 0)
           FROM ins GROUP BY service, date_trunc('minute', ts)
       ), det AS (
         ${DETECTIONS_INSERT('$3', 'WHERE d.event_id IN (SELECT id FROM ins)')}
       )
       SELECT id FROM ins`,
      values: [tenantId, rowsJson, detectionsJson(detections)],
    });
    return new Set(rows.map((r) => r.id));
  }

  /**
   * What was stored for these events, by id and timestamp (to answer a retried request with the
   * original result): the primary key `(tenant_id, ts, id)` finds them by both.
   */
  async findResults(tenantId: string, keys: { id: string; ts: Date }[]): Promise<Map<string, StoredResult>> {
    if (!keys.length) return new Map();
    const rows = await this.dataSource.query(
      `SELECT e.id, e.score, e.prediction, e.model_version, e.baseline, d.explanation
         FROM unnest($2::timestamptz[], $3::text[]) AS k(ts, id)
         JOIN events e ON e.tenant_id = $1 AND e.ts = k.ts AND e.id = k.id
         LEFT JOIN detections d ON d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.ts = e.ts`,
      [tenantId, keys.map((k) => k.ts), keys.map((k) => k.id)],
    );
    return new Map(
      rows.map((r: Record<string, unknown>) => [
        r.id as string,
        {
          id: r.id as string,
          score: r.score as number,
          prediction: r.prediction as number,
          modelVersion: (r.model_version as number) ?? null,
          baseline: (r.baseline as 'warming' | 'ready' | null) ?? null,
          explanation: r.explanation ?? undefined,
        },
      ]),
    );
  }

  /** The service's latest normal events' duration, status, size and time, newest first (cold-start baselines). */
  async recentForService(
    tenantId: string,
    service: string,
    limit: number,
  ): Promise<{ durationMs: number | null; statusCode: number | null; bytes: number | null; ts: Date }[]> {
    const rows = await this.dataSource.query(
      `SELECT duration_ms, status_code, bytes, ts FROM events WHERE tenant_id = $1 AND service = $2 AND prediction = 1 ORDER BY received_at DESC LIMIT $3`,
      [tenantId, service, limit],
    );
    return rows.map((r: Record<string, unknown>) => ({
      durationMs: r.duration_ms as number | null,
      statusCode: r.status_code as number | null,
      bytes: r.bytes === null ? null : Number(r.bytes),
      ts: r.ts as Date,
    }));
  }

  /** The tenant's latest events, newest first (drift). */
  async recent(tenantId: string, limit: number): Promise<LogEvent[]> {
    const rows = await this.dataSource.query(
      `SELECT id, ts, service, duration_ms, status_code, bytes FROM events WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT $2`,
      [tenantId, limit],
    );
    return rows.map(toLogEvent);
  }

  /** Stored events, and the score distribution of the latest `sample` of them. */
  async summary(tenantId: string, sample: number): Promise<{ total: number; min: number | null; mean: number | null; p05: number | null; p50: number | null; p95: number | null }> {
    const [row] = await this.dataSource.query(
      `WITH recent AS (SELECT score FROM events WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT $2)
       SELECT (SELECT COUNT(*) FROM events WHERE tenant_id = $1)::bigint AS total,
              MIN(score) AS min, AVG(score) AS mean,
              percentile_cont(0.05) WITHIN GROUP (ORDER BY score) AS p05,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY score) AS p50,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY score) AS p95
         FROM recent`,
      [tenantId, sample],
    );
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return { total: Number(row.total), min: n(row.min), mean: n(row.mean), p05: n(row.p05), p50: n(row.p50), p95: n(row.p95) };
  }

  /**
   * Training data from stored events: the tenant's events received since `since` (newest first,
   * at most `limit`), without the ones behind detections confirmed as real anomalies.
   */
  async trainingEvents(tenantId: string, since: Date, limit: number): Promise<LogEvent[]> {
    const rows = await this.dataSource.query(
      `SELECT e.id, e.ts, e.service, e.duration_ms, e.status_code, e.bytes FROM events e
        WHERE e.tenant_id = $1 AND e.received_at >= $2
          AND NOT EXISTS (SELECT 1 FROM detections d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.feedback = 'confirmed')
        ORDER BY e.received_at DESC LIMIT $3`,
      [tenantId, since, limit],
    );
    return rows.map(toLogEvent);
  }

  /**
   * Per service, the events received since `since`: how many and the event-time span they cover
   * (whether a service has data enough to train on, without loading it).
   */
  async serviceCoverage(tenantId: string, since: Date, before?: Date): Promise<{ service: string; rows: number; from: Date; to: Date }[]> {
    const rows = await this.dataSource.query(
      `SELECT service, COUNT(*)::int AS rows, MIN(ts) AS "from", MAX(ts) AS "to" FROM events
        WHERE tenant_id = $1 AND received_at >= $2 AND ($3::timestamptz IS NULL OR received_at < $3) GROUP BY service`,
      [tenantId, since, before ?? null],
    );
    return rows.map((r: { service: string; rows: number; from: Date; to: Date }) => ({ service: r.service, rows: Number(r.rows), from: r.from, to: r.to }));
  }

  /** Events received since `since` that model `version` scored (the denominator of its anomaly rate). */
  async countScoredBy(tenantId: string, version: number, since: Date): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1 AND received_at >= $2 AND model_version = $3`,
      [tenantId, since, version],
    );
    return Number(n);
  }

  /** The newest `limit` events received since `since`, newest first. */
  async receivedSince(tenantId: string, since: Date, limit: number): Promise<LogEvent[]> {
    const rows = await this.dataSource.query(
      `SELECT id, ts, service, duration_ms, status_code, bytes FROM events
        WHERE tenant_id = $1 AND received_at >= $2 ORDER BY received_at DESC LIMIT $3`,
      [tenantId, since, limit],
    );
    return rows.map(toLogEvent);
  }

  /** The events behind the tenant's newest `limit` event detections with this feedback (validation sets). */
  async withFeedback(tenantId: string, label: 'confirmed' | 'false_positive', limit: number): Promise<LogEvent[]> {
    const rows = await this.dataSource.query(
      `SELECT e.id, e.ts, e.service, e.duration_ms, e.status_code, e.bytes
         FROM detections d JOIN events e ON e.tenant_id = d.tenant_id AND e.ts = d.ts AND e.id = d.event_id
        WHERE d.tenant_id = $1 AND d.feedback = $2 AND d.kind = 'event'
        ORDER BY d.ts DESC LIMIT $3`,
      [tenantId, label, limit],
    );
    return rows.map(toLogEvent);
  }
}

const DETECTIONS_INSERT = (param: string, where = '') => `
  INSERT INTO detections (tenant_id, id, kind, event_id, service, ts, score, prediction, drift_alert, model_version, baseline,
                          explanation, metadata, duration_ms, status_code, metric, value, expected, likelihood, shipped_at)
  SELECT $1, d.id, d.kind, d.event_id, d.service, d.ts, d.score, d.prediction, d.drift_alert, d.model_version, d.baseline,
         d.explanation, d.metadata, d.duration_ms, d.status_code, d.metric, d.value, d.expected, d.likelihood,
         CASE WHEN d.ship THEN NULL ELSE now() END
    FROM jsonb_to_recordset(${param}::jsonb) AS d(id uuid, kind text, event_id text, service text, ts timestamptz,
    score float8, prediction int2, drift_alert bool, model_version int4, baseline bool, explanation jsonb, metadata jsonb,
    duration_ms float8, status_code int2, metric text, value float8, expected float8, likelihood float8, ship bool)
  ${where}
  ON CONFLICT DO NOTHING`;

/** A value as a field of COPY's text format (backslash, tab, newline and carriage return escaped). */
function copyText(v: string): string {
  return COPY_SPECIAL.test(v) ? v.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]) : v;
}
// Module constants: a regular expression literal in the function would be a new object per field.
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * The series partials of a batch, summed in JavaScript for the COPY path exactly as the INSERT path's
 * SQL sums them: per service and minute, requests, server errors, latencies in range, the newest event
 * time, anomalous events, and the response sizes as n, Σ ln(1 + bytes), Σ ln(1 + bytes)², max and min.
 */
function partialsJson(events: EventRow[]): string {
  type Group = {
    service: string; minute: number; count: number; errors: number; latencies: number[]; max_ts: number; anomalies: number;
    bytes_n: number; bytes_log_sum: number; bytes_log_sq: number; bytes_log_max: number | null; bytes_log_min: number | null;
  };
  const groups = new Map<string, Group>();
  for (const e of events) {
    const t = e.ts.getTime();
    const minute = t - (((t % 60_000) + 60_000) % 60_000);
    const key = `${minute} ${e.service}`;
    let g = groups.get(key);
    if (!g) {
      g = { service: e.service, minute, count: 0, errors: 0, latencies: [], max_ts: t, anomalies: 0,
            bytes_n: 0, bytes_log_sum: 0, bytes_log_sq: 0, bytes_log_max: null, bytes_log_min: null };
      groups.set(key, g);
    }
    g.count++;
    if (e.statusCode !== null && e.statusCode >= 500) g.errors++;
    if (e.durationMs !== null && e.durationMs >= 0 && e.durationMs <= MAX_DURATION_MS) g.latencies.push(e.durationMs);
    if (t > g.max_ts) g.max_ts = t;
    if (e.prediction === -1) g.anomalies++;
    if (e.bytes !== null && e.bytes >= 0) {
      const v = Math.log1p(e.bytes);
      g.bytes_n++;
      g.bytes_log_sum += v;
      g.bytes_log_sq += v * v;
      g.bytes_log_max = g.bytes_log_max === null ? v : Math.max(g.bytes_log_max, v);
      g.bytes_log_min = g.bytes_log_min === null ? v : Math.min(g.bytes_log_min, v);
    }
  }
  // Times as ISO strings only once per group, not per event.
  return JSON.stringify([...groups.values()].map((g) => ({ ...g, minute: new Date(g.minute).toISOString(), max_ts: new Date(g.max_ts).toISOString() })));
}

function detectionsJson(d: DetectionRow[]): string {
  return JSON.stringify(
    d.map((x) => ({
      id: x.id,
      kind: x.kind,
      event_id: x.eventId,
      service: x.service,
      ts: x.ts.toISOString(),
      score: x.score,
      prediction: x.prediction,
      drift_alert: x.driftAlert,
      model_version: x.modelVersion,
      baseline: x.baseline,
      explanation: x.explanation ?? null,
      metadata: x.metadata,
      duration_ms: x.durationMs,
      status_code: x.statusCode,
      metric: x.metric ?? null,
      value: x.value ?? null,
      expected: x.expected ?? null,
      likelihood: x.likelihood ?? null,
      ship: x.ship ?? false,
    })),
  );
}

type Querier = { query: (sql: string, params?: unknown[]) => Promise<unknown> };

/** Stores detections that belong to no new event (series detections). */
export async function insertDetections(m: Querier, tenantId: string, d: DetectionRow[]): Promise<void> {
  if (d.length) await m.query(DETECTIONS_INSERT('$2'), [tenantId, detectionsJson(d)]);
}

/** An unshipped event or anomaly record, as the Loki shipper needs it. */
export interface OutboxEvent {
  id: string;
  service: string;
  ts: Date;
  source: string;
  metadata: Record<string, unknown>;
  score: number;
  prediction: number;
  modelVersion: number | null;
}

export type ShipDecision = { kind: 'shipped' } | { kind: 'refused'; error: string } | { kind: 'retry' };

/** The Loki outbox: the `shipped_at` marker on events and detections. */
@Injectable()
export class OutboxRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Claims up to `limit` unshipped events and anomaly records of a tenant (rows another replica is
   * shipping are skipped), hands them to `ship`, and marks them by its decision, all in one
   * transaction: a crash or a retryable failure leaves them unshipped, and two replicas never
   * ship the same rows.
   */
  async shipBatch(
    tenantId: string,
    limit: number,
    ship: (events: OutboxEvent[], detections: DetectionRow[]) => Promise<ShipDecision>,
  ): Promise<{ events: number; detections: number; decision: ShipDecision | null }> {
    return this.dataSource.transaction(async (m) => {
      const events: Record<string, unknown>[] = await m.query(
        `SELECT id, service, ts, source, metadata, score, prediction, model_version FROM events
          WHERE tenant_id = $1 AND shipped_at IS NULL ORDER BY received_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [tenantId, limit],
      );
      const detections: Record<string, unknown>[] = await m.query(
        `SELECT * FROM detections WHERE tenant_id = $1 AND shipped_at IS NULL ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [tenantId, limit],
      );
      if (!events.length && !detections.length) return { events: 0, detections: 0, decision: null };
      const decision = await ship(
        events.map((r) => ({
          id: r.id as string,
          service: r.service as string,
          ts: r.ts as Date,
          source: r.source as string,
          metadata: r.metadata as Record<string, unknown>,
          score: Number(r.score),
          prediction: Number(r.prediction),
          modelVersion: r.model_version === null ? null : Number(r.model_version),
        })),
        detections.map(detectionFromRow),
      );
      if (decision.kind !== 'retry') {
        const error = decision.kind === 'refused' ? decision.error : null;
        await m.query(
          `UPDATE events e SET shipped_at = now(), ship_error = $4 FROM unnest($2::timestamptz[], $3::text[]) AS k(ts, id)
            WHERE e.tenant_id = $1 AND e.ts = k.ts AND e.id = k.id`,
          [tenantId, events.map((r) => r.ts), events.map((r) => r.id), error],
        );
        await m.query(`UPDATE detections SET shipped_at = now() WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, [tenantId, detections.map((r) => r.id)]);
      }
      return { events: events.length, detections: detections.length, decision };
    });
  }

  /** Unshipped rows of a tenant and the age of the oldest, for the backlog gauges. */
  async backlog(tenantId: string): Promise<{ count: number; oldestAgeSeconds: number }> {
    const [row] = await this.dataSource.query(
      `SELECT (SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND shipped_at IS NULL)
            + (SELECT COUNT(*) FROM detections WHERE tenant_id = $1 AND shipped_at IS NULL) AS count,
              EXTRACT(EPOCH FROM now() - LEAST(
                (SELECT MIN(received_at) FROM events WHERE tenant_id = $1 AND shipped_at IS NULL),
                (SELECT MIN(created_at) FROM detections WHERE tenant_id = $1 AND shipped_at IS NULL))) AS age`,
      [tenantId],
    );
    return { count: Number(row.count), oldestAgeSeconds: row.age === null ? 0 : Number(row.age) };
  }
}
