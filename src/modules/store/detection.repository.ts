import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DetectionRow } from './event.repository';

export interface DetectionFilter {
  service?: string;
  kind?: 'event' | 'series';
  since?: Date;
  until?: Date;
}

/** Position in the newest-first order: (ts, id) of the last item returned. */
export interface DetectionCursor {
  ts: Date;
  id: string;
}

/** A `detections` row (all columns or a subset) as a {@link DetectionRow}. */
export function detectionFromRow(r: Record<string, unknown>): DetectionRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: r.id as string,
    kind: r.kind as 'event' | 'series',
    eventId: (r.event_id as string) ?? null,
    service: r.service as string,
    ts: r.ts as Date,
    score: Number(r.score),
    prediction: Number(r.prediction),
    driftAlert: r.drift_alert as boolean,
    modelVersion: num(r.model_version),
    baseline: r.baseline as boolean,
    explanation: r.explanation ?? null,
    metadata: (r.metadata as Record<string, unknown>) ?? null,
    durationMs: num(r.duration_ms),
    statusCode: num(r.status_code),
    metric: (r.metric as string) ?? null,
    value: num(r.value),
    expected: num(r.expected),
    likelihood: num(r.likelihood),
    feedback: (r.feedback as string) ?? null,
    incidentId: (r.incident_id as string) ?? null,
    createdAt: r.created_at as Date,
  };
}

/** Anomaly history per tenant, newest first. */
@Injectable()
export class DetectionRepository {
  constructor(private readonly dataSource: DataSource) {}

  async list(tenantId: string, filter: DetectionFilter, limit: number, after?: DetectionCursor): Promise<DetectionRow[]> {
    const rows = await this.dataSource.query(
      `SELECT * FROM detections
        WHERE tenant_id = $1
          AND ($2::text IS NULL OR service = $2)
          AND ($3::text IS NULL OR kind = $3)
          AND ($4::timestamptz IS NULL OR ts >= $4)
          AND ($5::timestamptz IS NULL OR ts < $5)
          AND ($6::timestamptz IS NULL OR (ts, id) < ($6, $7::uuid))
        ORDER BY ts DESC, id DESC
        LIMIT $8`,
      [tenantId, filter.service ?? null, filter.kind ?? null, filter.since ?? null, filter.until ?? null, after?.ts ?? null, after?.id ?? null, limit],
    );
    return rows.map(detectionFromRow);
  }

  /** Records operator feedback on one of the tenant's detections; null when it does not exist. */
  async setFeedback(tenantId: string, id: string, label: 'false_positive' | 'confirmed'): Promise<DetectionRow | null> {
    const rows = await this.dataSource.query(
      `UPDATE detections SET feedback = $3, feedback_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING *`,
      [tenantId, id, label],
    );
    const updated = Array.isArray(rows[0]) ? rows[0] : rows;
    return updated.length ? detectionFromRow(updated[0]) : null;
  }

  /** Anomalies stored after `since` that nobody marked as false positives (the retrain trigger). */
  async countSince(tenantId: string, since: Date | null): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `SELECT COUNT(*)::int AS n FROM detections
        WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR created_at > $2) AND feedback IS DISTINCT FROM 'false_positive'`,
      [tenantId, since],
    );
    return n;
  }

  /**
   * Anomalies model `version` raised on events stored since `since` that nobody marked as false
   * positives (the retrain trigger counts only the active model's own).
   */
  async countModelAnomaliesSince(tenantId: string, version: number, since: Date): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `SELECT COUNT(*)::int AS n FROM detections
        WHERE tenant_id = $1 AND kind = 'event' AND model_version = $2 AND created_at >= $3
          AND feedback IS DISTINCT FROM 'false_positive'`,
      [tenantId, version, since],
    );
    return n;
  }

  /**
   * Event times of confirmed anomalies per service between `from` and `to` (at most `limit`,
   * newest first): training data leaves out the traffic around them.
   */
  async trainingExclusions(tenantId: string, from: Date, to: Date, limit: number): Promise<{ service: string; ts: Date }[]> {
    return this.dataSource.query(
      `SELECT service, ts FROM detections
        WHERE tenant_id = $1 AND ts >= $2 AND ts <= $3 AND feedback = 'confirmed'
        ORDER BY ts DESC LIMIT $4`,
      [tenantId, from, to, limit],
    );
  }

  /** Event ids behind detections confirmed as real anomalies: kept out of training data. */
  async confirmedEventIds(tenantId: string): Promise<Set<string>> {
    const rows = await this.dataSource.query(
      `SELECT event_id FROM detections WHERE tenant_id = $1 AND feedback = 'confirmed' AND event_id IS NOT NULL`,
      [tenantId],
    );
    return new Set(rows.map((r: { event_id: string }) => r.event_id));
  }

  /** Anomalies not yet through the incident policy (read through the small partial index of pending ones). */
  async countAlertPending(tenantId: string): Promise<number> {
    const [{ n }] = await this.dataSource.query(`SELECT COUNT(*)::int AS n FROM detections WHERE tenant_id = $1 AND alert_pending`, [tenantId]);
    return Number(n);
  }

  async count(tenantId: string): Promise<number> {
    const [{ n }] = await this.dataSource.query(`SELECT COUNT(*)::bigint AS n FROM detections WHERE tenant_id = $1`, [tenantId]);
    return Number(n);
  }

  /** Keeps the tenant's newest `keep` detections and deletes the rest. */
  async pruneToLimit(tenantId: string, keep: number): Promise<number> {
    const [, count] = await this.dataSource.query(
      `DELETE FROM detections d
        WHERE d.tenant_id = $1
          AND (d.ts, d.id) < (SELECT ts, id FROM detections WHERE tenant_id = $1 ORDER BY ts DESC, id DESC OFFSET $2 - 1 LIMIT 1)`,
      [tenantId, keep],
    );
    return Number(count ?? 0);
  }
}
