import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

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
  score: number;
  prediction: number;
  modelVersion: number | null;
  /** Set when a cold-start baseline scored the event. */
  baseline: 'warming' | 'ready' | null;
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
  createdAt?: Date;
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
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Stores events and their detections atomically. Events whose id is already stored (a retry)
   * are skipped, and so are their detections. Returns the ids actually inserted.
   */
  async insertScored(tenantId: string, events: EventRow[], detections: DetectionRow[]): Promise<Set<string>> {
    if (!events.length) return new Set();
    return this.dataSource.transaction(async (m) => {
      // One statement over arrays: the cost stays flat per batch instead of per row.
      const inserted: { id: string }[] = await m.query(
        `INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version, baseline)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::float8[], $7::int2[], $8::int8[],
                                  $9::jsonb[], $10::float8[], $11::int2[], $12::int4[], $13::text[])
         ON CONFLICT (tenant_id, id) DO NOTHING
         RETURNING id`,
        [
          tenantId,
          events.map((e) => e.id),
          events.map((e) => e.service),
          events.map((e) => e.ts),
          events.map((e) => e.source),
          events.map((e) => e.durationMs),
          events.map((e) => e.statusCode),
          events.map((e) => e.bytes),
          events.map((e) => JSON.stringify(e.metadata)),
          events.map((e) => e.score),
          events.map((e) => e.prediction),
          events.map((e) => e.modelVersion),
          events.map((e) => e.baseline),
        ],
      );
      const ids = new Set(inserted.map((r) => r.id));
      const fresh = detections.filter((d) => d.eventId === null || ids.has(d.eventId));
      if (fresh.length) await insertDetections(m, tenantId, fresh);
      return ids;
    });
  }

  /** What was stored for these event ids (to answer a retried request with the original result). */
  async findResults(tenantId: string, ids: string[]): Promise<Map<string, StoredResult>> {
    if (!ids.length) return new Map();
    const rows = await this.dataSource.query(
      `SELECT e.id, e.score, e.prediction, e.model_version, e.baseline, d.explanation
         FROM events e LEFT JOIN detections d ON d.tenant_id = e.tenant_id AND d.event_id = e.id
        WHERE e.tenant_id = $1 AND e.id = ANY($2::text[])`,
      [tenantId, ids],
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

  /** The service's latest events' duration and status, newest first (cold-start baselines). */
  async recentForService(tenantId: string, service: string, limit: number): Promise<{ durationMs: number | null; statusCode: number | null }[]> {
    const rows = await this.dataSource.query(
      `SELECT duration_ms, status_code FROM events WHERE tenant_id = $1 AND service = $2 ORDER BY received_at DESC LIMIT $3`,
      [tenantId, service, limit],
    );
    return rows.map((r: Record<string, unknown>) => ({ durationMs: r.duration_ms as number | null, statusCode: r.status_code as number | null }));
  }

  /** The tenant's latest events, newest first (drift). */
  async recent(tenantId: string, limit: number): Promise<{ ts: Date; service: string; durationMs: number | null; statusCode: number | null; bytes: number | null }[]> {
    const rows = await this.dataSource.query(
      `SELECT ts, service, duration_ms, status_code, bytes FROM events WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT $2`,
      [tenantId, limit],
    );
    return rows.map((r: Record<string, unknown>) => ({
      ts: r.ts as Date,
      service: r.service as string,
      durationMs: r.duration_ms as number | null,
      statusCode: r.status_code as number | null,
      bytes: r.bytes === null ? null : Number(r.bytes),
    }));
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

  /** Retention: drops the tenant's events received before `cutoff`. */
  async pruneReceivedBefore(tenantId: string, cutoff: Date): Promise<number> {
    const [, count] = await this.dataSource.query(`DELETE FROM events WHERE tenant_id = $1 AND received_at < $2`, [tenantId, cutoff]);
    return Number(count ?? 0);
  }
}

type Querier = { query: (sql: string, params?: unknown[]) => Promise<unknown> };

export async function insertDetections(m: Querier, tenantId: string, d: DetectionRow[]): Promise<void> {
  await m.query(
    `INSERT INTO detections (tenant_id, id, kind, event_id, service, ts, score, prediction, drift_alert, model_version, baseline,
                             explanation, metadata, duration_ms, status_code, metric, value, expected, likelihood)
     SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::float8[], $8::int2[], $9::bool[],
                              $10::int4[], $11::bool[], $12::jsonb[], $13::jsonb[], $14::float8[], $15::int2[], $16::text[],
                              $17::float8[], $18::float8[], $19::float8[])
     ON CONFLICT DO NOTHING`,
    [
      tenantId,
      d.map((x) => x.id),
      d.map((x) => x.kind),
      d.map((x) => x.eventId),
      d.map((x) => x.service),
      d.map((x) => x.ts),
      d.map((x) => x.score),
      d.map((x) => x.prediction),
      d.map((x) => x.driftAlert),
      d.map((x) => x.modelVersion),
      d.map((x) => x.baseline),
      d.map((x) => (x.explanation === undefined ? null : JSON.stringify(x.explanation))),
      d.map((x) => (x.metadata === null ? null : JSON.stringify(x.metadata))),
      d.map((x) => x.durationMs),
      d.map((x) => x.statusCode),
      d.map((x) => x.metric ?? null),
      d.map((x) => x.value ?? null),
      d.map((x) => x.expected ?? null),
      d.map((x) => x.likelihood ?? null),
    ],
  );
}
