import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { AlertSeverity } from './alert.repository';
import { detectionFromRow } from './detection.repository';
import { DetectionRow } from './event.repository';

/** One signal of an incident: the strongest finding of it, and when it was seen (event time, ISO 8601). */
export interface IncidentSignal {
  /** traffic | errors | latency | payload | anomalies */
  signal: string;
  metric: string | null;
  severity: 'warning' | 'critical';
  direction: 'up' | 'down';
  firstAt: string;
  lastAt: string;
  /** The window's value and the baseline it was judged against, in the metric's unit. */
  value: number | null;
  expected: number | null;
  ratio: number | null;
  /** ln of the tail probability of the strongest finding. */
  logP: number | null;
  summary: string | null;
  /** Series detections of this signal in the incident. */
  detections: number;
}

/** An incident as the policy sees and changes it. */
export interface OpenIncident {
  id: string;
  service: string;
  severity: AlertSeverity;
  direction: 'up' | 'down' | null;
  /** Event time of the first evidence (the first minute of the window that found it). */
  startedAt: Date;
  /** Event time at which the opening evidence was complete (end of its minute). */
  detectedAt: Date;
  /** Minute (start, event time) of the latest evidence. */
  lastEvidenceAt: Date;
  signals: IncidentSignal[];
  /** Severity of the latest message sent (null: not announced). */
  notifiedSeverity: AlertSeverity | null;
  /** Event time of the latest message. */
  lastMessageAt: Date | null;
}

export interface IncidentRow extends OpenIncident {
  tenantId: string;
  seq: number;
  status: 'open' | 'resolved';
  endedAt: Date | null;
  anomalyCount: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A Slack message to queue in the alert outbox, with the incident as it stood then. */
export interface IncidentMessage {
  id: string;
  incidentId: string;
  kind: 'open' | 'escalate' | 'renotify';
  /** Event time the message is about. */
  at: Date;
  snapshot: OpenIncident;
}

export interface IncidentPlan {
  /** Incidents created or changed, in their final state. */
  upserts: OpenIncident[];
  /** Incidents that ended (a later one of their service opened), each with its recovery message. */
  ends: { incidentId: string; endedAt: Date; recoveryId: string; silenced: boolean; notified: boolean }[];
  messages: IncidentMessage[];
  /** Every detection of the batch, with the incident it is part of (null: none). */
  assignments: { detectionId: string; incidentId: string | null }[];
}

export interface IncidentBatch {
  detections: DetectionRow[];
  open: OpenIncident[];
  /** Services with an active silence ('*' silences them all). */
  silenced: string[];
}

export interface IncidentFilter {
  service?: string;
  status?: 'open' | 'resolved';
}

const MINUTE_MS = 60_000;

function toIncident(r: Record<string, unknown>): IncidentRow {
  return {
    tenantId: r.tenant_id as string,
    id: r.id as string,
    seq: Number(r.seq),
    service: r.service as string,
    status: r.status as 'open' | 'resolved',
    severity: r.severity as AlertSeverity,
    direction: (r.direction as 'up' | 'down' | null) ?? null,
    startedAt: r.started_at as Date,
    detectedAt: r.detected_at as Date,
    lastEvidenceAt: r.last_evidence_at as Date,
    endedAt: (r.ended_at as Date) ?? null,
    signals: (r.signals as IncidentSignal[]) ?? [],
    anomalyCount: Number(r.anomaly_count ?? 0),
    notifiedSeverity: (r.notified_severity as AlertSeverity) ?? null,
    lastMessageAt: (r.last_message_at as Date) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

const lockTenant = (m: EntityManager, tenantId: string) => m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`alerts:${tenantId}`]);

/** The anomalies of an incident counted on read, so late-attached ones are always included. */
const WITH_COUNT = `i.*, (SELECT COUNT(*) FROM detections d WHERE d.tenant_id = i.tenant_id AND d.incident_id = i.id)::int AS anomaly_count`;

/**
 * Incidents (issue 12): opened, escalated and ended per tenant and service by the incident policy,
 * in event time, with their Slack messages queued in the alert outbox (`alerts`) in the same
 * transaction. Runs under the tenant's alerts advisory lock, so replicas never open two incidents
 * for one service or end one that evidence is joining.
 */
@Injectable()
export class IncidentRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Takes the tenant's next pending detections (event-time order), lets `decide` plan incidents and
   * messages, and applies the plan and marks the detections processed in the same transaction, so a
   * detection takes part exactly once whichever replica or path gets it. Null when nothing was pending.
   */
  async processPending(tenantId: string, limit: number, decide: (batch: IncidentBatch) => IncidentPlan): Promise<IncidentPlan | null> {
    return this.dataSource.transaction(async (m) => {
      await lockTenant(m, tenantId);
      const rows: Record<string, unknown>[] = await m.query(
        `SELECT id, kind, event_id, service, ts, score, prediction, drift_alert, model_version, baseline, explanation, metadata,
                duration_ms, status_code, metric, value, expected, likelihood, created_at
           FROM detections WHERE tenant_id = $1 AND alert_pending ORDER BY ts, id LIMIT $2`,
        [tenantId, limit],
      );
      if (!rows.length) return null;
      const detections = rows.map(detectionFromRow);
      const services = [...new Set(detections.map((d) => d.service))];
      const open: Record<string, unknown>[] = await m.query(
        `SELECT * FROM incidents WHERE tenant_id = $1 AND service = ANY($2::text[]) AND status = 'open'`,
        [tenantId, services],
      );
      const silenced: { service: string }[] = await m.query(
        `SELECT DISTINCT service FROM silences
          WHERE tenant_id = $1 AND (service = ANY($2::text[]) OR service = '*')
            AND ended_at IS NULL AND starts_at <= now() AND expires_at > now()`,
        [tenantId, services],
      );
      const plan = decide({ detections, open: open.map(toIncident), silenced: silenced.map((s) => s.service) });

      // An incident that ended in this batch is written as resolved, and before the incident that
      // replaced it: one open incident per service at any moment (incidents_one_open_idx).
      const ends = new Map(plan.ends.map((e) => [e.incidentId, e]));
      const upserts = [...plan.upserts].sort((x, y) => Number(ends.has(y.id)) - Number(ends.has(x.id)));
      for (const e of plan.ends) {
        if (!plan.upserts.some((u) => u.id === e.incidentId)) {
          await m.query(`UPDATE incidents SET status = 'resolved', ended_at = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'open'`, [tenantId, e.incidentId, e.endedAt]);
        }
      }
      for (const inc of upserts) {
        const end = ends.get(inc.id);
        await m.query(
          `INSERT INTO incidents (tenant_id, id, service, status, severity, direction, started_at, detected_at, last_evidence_at, signals,
                                  notified_severity, last_message_at, ended_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status, severity = excluded.severity, direction = excluded.direction,
             started_at = excluded.started_at, last_evidence_at = excluded.last_evidence_at, signals = excluded.signals,
             notified_severity = excluded.notified_severity, last_message_at = excluded.last_message_at, ended_at = excluded.ended_at,
             updated_at = now()`,
          [
            tenantId, inc.id, inc.service, end ? 'resolved' : 'open', inc.severity, inc.direction, inc.startedAt, inc.detectedAt, inc.lastEvidenceAt,
            JSON.stringify(inc.signals), inc.notifiedSeverity, inc.lastMessageAt, end?.endedAt ?? null,
          ],
        );
      }
      // Recoveries first, so Slack shows an incident's end before the opening of the one after it.
      for (const e of plan.ends) await this.afterEnd(m, tenantId, e.incidentId, e.endedAt, e.recoveryId, e.silenced, e.notified);
      for (const msg of plan.messages) await this.queueMessage(m, tenantId, msg.id, msg.kind, msg.snapshot, null, false);
      await m.query(
        `UPDATE detections d SET alert_pending = false, incident_id = a.incident_id
           FROM unnest($2::uuid[], $3::uuid[]) AS a(id, incident_id)
          WHERE d.tenant_id = $1 AND d.id = a.id`,
        [tenantId, plan.assignments.map((a) => a.detectionId), plan.assignments.map((a) => a.incidentId)],
      );
      for (const inc of plan.upserts) await this.attachEvents(m, tenantId, inc.id);
      return plan;
    });
  }

  /**
   * Ends the tenant's open incidents that have had no evidence for `cooldownMs` of event time: their
   * service's series has closed minutes that far past the last evidence (and no series detection of
   * it is still pending). Each notified one gets a recovery message. Returns how many ended.
   */
  async endQuiet(tenantId: string, cooldownMs: number, newId: () => string): Promise<number> {
    return this.dataSource.transaction(async (m) => {
      await lockTenant(m, tenantId);
      const due: { id: string; last_evidence_at: Date; notified: boolean; silenced: boolean }[] = await m.query(
        `SELECT i.id, i.last_evidence_at, i.notified_severity IS NOT NULL AS notified,
                EXISTS (SELECT 1 FROM silences s
                         WHERE s.tenant_id = $1 AND (s.service = i.service OR s.service = '*')
                           AND s.ended_at IS NULL AND s.starts_at <= now() AND s.expires_at > now()) AS silenced
           FROM incidents i JOIN series_state st ON st.tenant_id = i.tenant_id AND st.service = i.service
          WHERE i.tenant_id = $1 AND i.status = 'open'
            AND st.last_minute >= i.last_evidence_at + $2 * interval '1 millisecond'
            AND NOT EXISTS (SELECT 1 FROM detections d
                             WHERE d.tenant_id = i.tenant_id AND d.service = i.service AND d.alert_pending AND d.kind = 'series')`,
        [tenantId, cooldownMs],
      );
      for (const d of due) await this.end(m, tenantId, d.id, new Date(new Date(d.last_evidence_at).getTime() + MINUTE_MS), newId(), d.silenced, d.notified);
      return due.length;
    });
  }

  /** Event anomalies of the service inside the incident's window belong to it. */
  private async attachEvents(m: EntityManager, tenantId: string, incidentId: string): Promise<void> {
    await m.query(
      `UPDATE detections d SET incident_id = i.id
         FROM incidents i
        WHERE i.tenant_id = $1 AND i.id = $2 AND d.tenant_id = i.tenant_id AND d.service = i.service AND d.kind = 'event'
          AND d.incident_id IS NULL AND d.ts >= i.started_at - interval '1 minute'
          AND d.ts < COALESCE(i.ended_at, i.last_evidence_at + interval '1 minute')`,
      [tenantId, incidentId],
    );
  }

  /** Ends an open incident (no-op when it is not open any more), then what follows an end. */
  private async end(m: EntityManager, tenantId: string, id: string, endedAt: Date, recoveryId: string, silenced: boolean, notified: boolean): Promise<void> {
    const [rows]: [unknown[], number] = await m.query(
      `UPDATE incidents SET status = 'resolved', ended_at = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'open' RETURNING id`,
      [tenantId, id, endedAt],
    );
    if (rows.length) await this.afterEnd(m, tenantId, id, endedAt, recoveryId, silenced, notified);
  }

  /** After an incident ended: its event anomalies attached, a recovery message if it was announced, its messages resolved. */
  private async afterEnd(m: EntityManager, tenantId: string, id: string, endedAt: Date, recoveryId: string, silenced: boolean, notified: boolean): Promise<void> {
    await this.attachEvents(m, tenantId, id);
    if (notified) {
      const [row] = await m.query(`SELECT * FROM incidents WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
      await this.queueMessage(m, tenantId, recoveryId, 'recovery', toIncident(row), endedAt, silenced);
    }
    await m.query(`UPDATE alerts SET resolved_at = now(), updated_at = now() WHERE tenant_id = $1 AND incident_id = $2 AND resolved_at IS NULL`, [tenantId, id]);
  }

  /**
   * Queues a Slack message of the incident in the alert outbox. The message carries the incident as it
   * stood (signals, since when, baseline) in `worst.incident`, so it renders the same whenever it is sent.
   */
  private async queueMessage(
    m: EntityManager,
    tenantId: string,
    id: string,
    kind: 'open' | 'escalate' | 'renotify' | 'recovery',
    inc: OpenIncident,
    endedAt: Date | null,
    silenced: boolean,
  ): Promise<void> {
    const top = [...inc.signals].sort((a, b) => (a.logP ?? 0) - (b.logP ?? 0))[0] ?? null;
    const count = inc.signals.reduce((n, s) => n + s.detections, 0);
    const worst = {
      detectionId: null,
      kind: 'series',
      ts: top?.lastAt ?? inc.lastEvidenceAt.toISOString(),
      score: top?.logP ?? 0,
      durationMs: top?.signal === 'latency' ? top.value : null,
      statusCode: null,
      scorer: 'series',
      modelVersion: null,
      metric: top?.metric ?? null,
      value: top?.value ?? null,
      expected: top?.expected ?? null,
      explanation: top?.summary ? { summary: top.summary, features: [] } : null,
      incident: {
        id: inc.id,
        severity: inc.severity,
        direction: inc.direction,
        startedAt: inc.startedAt.toISOString(),
        detectedAt: inc.detectedAt.toISOString(),
        lastEvidenceAt: inc.lastEvidenceAt.toISOString(),
        endedAt: endedAt?.toISOString() ?? null,
        signals: inc.signals,
      },
    };
    await m.query(
      `INSERT INTO alerts (tenant_id, id, incident_id, service, kind, severity, anomaly_count, first_seen, last_seen, worst,
                           status, last_outcome, last_error, resolved_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
               CASE WHEN $11 THEN 'skipped' ELSE 'pending' END, CASE WHEN $11 THEN 'silenced' END,
               CASE WHEN $11 THEN 'the service is silenced' END, CASE WHEN $5 = 'recovery' THEN now() END)`,
      [tenantId, id, inc.id, inc.service, kind, inc.severity, count, inc.startedAt, endedAt ?? new Date(inc.lastEvidenceAt.getTime() + MINUTE_MS), JSON.stringify(worst), silenced],
    );
  }

  /** The tenant's incidents, newest first, after the one at `afterSeq`. */
  async list(tenantId: string, filter: IncidentFilter, limit: number, afterSeq?: number): Promise<IncidentRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${WITH_COUNT} FROM incidents i
        WHERE i.tenant_id = $1 AND ($2::text IS NULL OR i.service = $2) AND ($3::text IS NULL OR i.status = $3)
          AND ($4::bigint IS NULL OR i.seq < $4)
        ORDER BY i.seq DESC LIMIT $5`,
      [tenantId, filter.service ?? null, filter.status ?? null, afterSeq ?? null, limit],
    );
    return rows.map(toIncident);
  }

  async findById(tenantId: string, id: string): Promise<IncidentRow | null> {
    const [row] = await this.dataSource.query(`SELECT ${WITH_COUNT} FROM incidents i WHERE i.tenant_id = $1 AND i.id = $2`, [tenantId, id]);
    return row ? toIncident(row) : null;
  }

  /** The anomalies of an incident: its series evidence first (oldest first), then event anomalies by score; at most `limit`. */
  async anomalies(tenantId: string, incidentId: string, limit: number): Promise<DetectionRow[]> {
    const rows: Record<string, unknown>[] = await this.dataSource.query(
      `SELECT * FROM detections WHERE tenant_id = $1 AND incident_id = $2
        ORDER BY (kind = 'series') DESC, CASE WHEN kind = 'series' THEN extract(epoch FROM ts) ELSE score END, id LIMIT $3`,
      [tenantId, incidentId, limit],
    );
    return rows.map(detectionFromRow);
  }

  /**
   * Event-time windows of the tenant's incidents that overlap [from, to], newest first (at most
   * `limit`): an open incident runs to `to`. Retraining leaves their traffic out.
   */
  async timeWindows(tenantId: string, from: Date, to: Date, limit: number): Promise<{ service: string; from: Date; to: Date }[]> {
    const rows = await this.dataSource.query(
      `SELECT service, started_at, COALESCE(ended_at, $3) AS ended_at FROM incidents
        WHERE tenant_id = $1 AND started_at <= $3 AND COALESCE(ended_at, $3) >= $2
        ORDER BY started_at DESC LIMIT $4`,
      [tenantId, from, to, limit],
    );
    return rows.map((r: { service: string; started_at: Date; ended_at: Date }) => ({ service: r.service, from: r.started_at, to: r.ended_at }));
  }
}
