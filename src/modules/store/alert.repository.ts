import { Injectable } from '@nestjs/common';
import { detectionFromRow } from './detection.repository';
import { DataSource, EntityManager } from 'typeorm';
import { DetectionRow } from './event.repository';

export type AlertKind = 'open' | 'renotify' | 'recovery';
export type AlertStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'skipped';
export type AlertSeverity = 'info' | 'warning' | 'critical';
/** How the last delivery attempt ended (or why none was made). */
export type DeliveryOutcome =
  | 'ok'
  | 'rate_limited'
  | 'server_error'
  | 'rejected'
  | 'timeout'
  | 'interrupted'
  | 'network'
  | 'not_configured'
  | 'silenced';

/** The most anomalous detection an alert groups: what its message shows. */
export interface AlertSample {
  detectionId: string;
  kind: 'event' | 'series';
  ts: string;
  score: number;
  durationMs: number | null;
  statusCode: number | null;
  scorer: 'baseline' | 'model';
  modelVersion: number | null;
  explanation: {
    summary?: string;
    features?: { name: string; value: number | null; p50: number | null; p99: number | null; contribution: number }[];
  } | null;
  metric?: string | null;
  value?: number | null;
  expected?: number | null;
}

/** One Slack message in the outbox, with the anomalies it groups and its delivery state. */
export interface AlertRow {
  tenantId: string;
  id: string;
  seq: number;
  incidentId: string;
  service: string;
  kind: AlertKind;
  severity: AlertSeverity;
  anomalyCount: number;
  firstSeen: Date;
  lastSeen: Date;
  worst: AlertSample | null;
  status: AlertStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastOutcome: DeliveryOutcome | null;
  lastError: string | null;
  uncertainAttempts: number;
  target: 'tenant' | 'default' | null;
  payload: unknown;
  sentAt: Date | null;
  resolvedAt: Date | null;
  createdAt: Date;
}

/** The latest message of an incident that has not recovered: new anomalies of its service join it. */
export type OpenAlert = Pick<
  AlertRow,
  'id' | 'incidentId' | 'service' | 'kind' | 'severity' | 'anomalyCount' | 'firstSeen' | 'lastSeen' | 'worst'
>;

export type NewAlert = OpenAlert;

/** What the alert policy decided for a batch of pending detections; applied in one transaction. */
export interface AlertPlan {
  /** Existing open alerts that anomalies joined, in their final state. */
  updates: OpenAlert[];
  /** In order: new messages, and incidents to close with a recovery message. */
  ops: (
    { type: 'insert'; alert: NewAlert } | { type: 'recover'; incidentId: string; recoveryId: string; silenced: boolean }
  )[];
  /** Every detection of the batch, with the alert it joined (null: not alerted). */
  assignments: { detectionId: string; alertId: string | null }[];
}

export interface PendingBatch {
  detections: DetectionRow[];
  open: OpenAlert[];
  /** Services with an active silence ('*' silences them all). */
  silenced: string[];
}

/** An alert claimed for delivery, with what the previous attempt left behind. */
export interface ClaimedAlert extends AlertRow {
  /** The previous attempt may have reached Slack (timed out, or its sender vanished). */
  retryAfterUncertain: boolean;
  /** The whole incident so far (all its messages). */
  incident: { anomalyCount: number; firstSeen: Date; lastSeen: Date };
}

export interface AlertFilter {
  service?: string;
  status?: AlertStatus;
  kind?: AlertKind;
}

const SEVERITY_ORDER = `CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END`;

function toRow(r: Record<string, unknown>): AlertRow {
  return {
    tenantId: r.tenant_id as string,
    id: r.id as string,
    seq: Number(r.seq),
    incidentId: r.incident_id as string,
    service: r.service as string,
    kind: r.kind as AlertKind,
    severity: r.severity as AlertSeverity,
    anomalyCount: Number(r.anomaly_count),
    firstSeen: r.first_seen as Date,
    lastSeen: r.last_seen as Date,
    worst: (r.worst as AlertSample) ?? null,
    status: r.status as AlertStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at as Date,
    lastOutcome: (r.last_outcome as DeliveryOutcome) ?? null,
    lastError: (r.last_error as string) ?? null,
    uncertainAttempts: Number(r.uncertain_attempts),
    target: (r.target as 'tenant' | 'default') ?? null,
    payload: r.payload ?? null,
    sentAt: (r.sent_at as Date) ?? null,
    resolvedAt: (r.resolved_at as Date) ?? null,
    createdAt: r.created_at as Date,
  };
}



const lockTenant = (m: EntityManager, tenantId: string) =>
  m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`alerts:${tenantId}`]);

/**
 * The alert outbox. Turning anomalies into alerts and closing quiet incidents both run under one
 * per-tenant advisory lock, so replicas never open two incidents for one service or count an
 * anomaly into an incident that is closing. Delivery claims rows with FOR UPDATE SKIP LOCKED and
 * holds them by a lease, so two senders never send the same message.
 */
@Injectable()
export class AlertRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Takes the tenant's next pending detections (oldest first), lets `decide` plan the alerts, and
   * applies the plan and marks the detections processed in the same transaction: a detection is
   * turned into an alert exactly once, whichever replica or path (bus, reconciliation) gets it.
   * Returns null when nothing was pending.
   */
  async processPending(
    tenantId: string,
    limit: number,
    decide: (batch: PendingBatch) => AlertPlan,
  ): Promise<AlertPlan | null> {
    return this.dataSource.transaction(async (m) => {
      await lockTenant(m, tenantId);
      const rows: Record<string, unknown>[] = await m.query(
        `SELECT id, kind, event_id, service, ts, score, prediction, drift_alert, model_version, baseline, explanation,
                duration_ms, status_code, metric, value, expected, likelihood, created_at
           FROM detections WHERE tenant_id = $1 AND alert_pending ORDER BY created_at, id LIMIT $2`,
        [tenantId, limit],
      );
      if (!rows.length) return null;
      const detections = rows.map(detectionFromRow);
      const services = [...new Set(detections.map((d) => d.service))];
      const open: Record<string, unknown>[] = await m.query(
        `SELECT DISTINCT ON (service) * FROM alerts
          WHERE tenant_id = $1 AND service = ANY($2::text[]) AND resolved_at IS NULL AND kind <> 'recovery'
          ORDER BY service, seq DESC`,
        [tenantId, services],
      );
      const silenced: { service: string }[] = await m.query(
        `SELECT DISTINCT service FROM silences
          WHERE tenant_id = $1 AND (service = ANY($2::text[]) OR service = '*')
            AND ended_at IS NULL AND starts_at <= now() AND expires_at > now()`,
        [tenantId, services],
      );
      const plan = decide({ detections, open: open.map(toRow), silenced: silenced.map((s) => s.service) });

      for (const a of plan.updates) {
        await m.query(
          `UPDATE alerts SET anomaly_count = $3, last_seen = $4, severity = $5, worst = $6, updated_at = now()
            WHERE tenant_id = $1 AND id = $2`,
          [tenantId, a.id, a.anomalyCount, a.lastSeen, a.severity, a.worst],
        );
      }
      for (const op of plan.ops) {
        if (op.type === 'insert') {
          const a = op.alert;
          await m.query(
            `INSERT INTO alerts (tenant_id, id, incident_id, service, kind, severity, anomaly_count, first_seen, last_seen, worst)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [
              tenantId,
              a.id,
              a.incidentId,
              a.service,
              a.kind,
              a.severity,
              a.anomalyCount,
              a.firstSeen,
              a.lastSeen,
              a.worst,
            ],
          );
        } else {
          await this.recover(m, tenantId, op.incidentId, op.recoveryId, op.silenced);
        }
      }
      await m.query(
        `UPDATE detections d SET alert_pending = false, alert_id = a.alert_id
           FROM unnest($2::uuid[], $3::uuid[]) AS a(id, alert_id)
          WHERE d.tenant_id = $1 AND d.id = a.id`,
        [tenantId, plan.assignments.map((a) => a.detectionId), plan.assignments.map((a) => a.alertId)],
      );
      return plan;
    });
  }

  /**
   * Closes the tenant's incidents whose last anomaly is at least `quietMs` old, each with a
   * recovery message (recorded as skipped while its service is silenced). Returns how many.
   */
  async recoverQuiet(tenantId: string, quietMs: number, newId: () => string): Promise<number> {
    return this.dataSource.transaction(async (m) => {
      await lockTenant(m, tenantId);
      const due: { incident_id: string; silenced: boolean }[] = await m.query(
        `SELECT cur.incident_id,
                EXISTS (SELECT 1 FROM silences s
                         WHERE s.tenant_id = $1 AND (s.service = cur.service OR s.service = '*')
                           AND s.ended_at IS NULL AND s.starts_at <= now() AND s.expires_at > now()) AS silenced
           FROM (SELECT DISTINCT ON (service) incident_id, service, last_seen FROM alerts
                  WHERE tenant_id = $1 AND resolved_at IS NULL AND kind <> 'recovery'
                  ORDER BY service, seq DESC) cur
          WHERE cur.last_seen <= now() - $2 * interval '1 millisecond'`,
        [tenantId, quietMs],
      );
      for (const d of due) await this.recover(m, tenantId, d.incident_id, newId(), d.silenced);
      return due.length;
    });
  }

  private async recover(
    m: EntityManager,
    tenantId: string,
    incidentId: string,
    recoveryId: string,
    silenced: boolean,
  ): Promise<void> {
    await m.query(
      `INSERT INTO alerts (tenant_id, id, incident_id, service, kind, severity, anomaly_count, first_seen, last_seen, worst,
                           status, last_outcome, last_error, resolved_at)
       SELECT $1, $3, $2, MIN(service), 'recovery',
              (ARRAY['info', 'warning', 'critical'])[MAX(${SEVERITY_ORDER})],
              SUM(anomaly_count), MIN(first_seen), MAX(last_seen),
              (ARRAY_AGG(worst ORDER BY (worst->>'score')::float8 ASC NULLS LAST))[1],
              CASE WHEN $4 THEN 'skipped' ELSE 'pending' END,
              CASE WHEN $4 THEN 'silenced' END,
              CASE WHEN $4 THEN 'the service is silenced' END,
              now()
         FROM alerts WHERE tenant_id = $1 AND incident_id = $2 AND kind <> 'recovery'`,
      [tenantId, incidentId, recoveryId, silenced],
    );
    await m.query(
      `UPDATE alerts SET resolved_at = now(), updated_at = now() WHERE tenant_id = $1 AND incident_id = $2 AND resolved_at IS NULL`,
      [tenantId, incidentId],
    );
  }

  /**
   * Claims due messages of these tenants for delivery (system job, across tenants): pending ones
   * whose next attempt is due, and those whose sender's lease ran out (it died mid-send, so Slack
   * may have the message: the retry is flagged uncertain). A message waits for the earlier
   * messages of its incident, so Slack shows them in order.
   */
  async claimDueAlerts(tenantIds: string[], limit: number, leaseMs: number): Promise<ClaimedAlert[]> {
    if (!tenantIds.length) return [];
    // An UPDATE answers [rows, count] through TypeORM.
    const [rows]: [Record<string, unknown>[], number] = await this.dataSource.query(
      `WITH due AS (
         SELECT a.tenant_id, a.id, a.status AS prev_status, a.last_outcome AS prev_outcome
           FROM alerts a
          WHERE a.tenant_id = ANY($1::text[])
            AND ((a.status = 'pending' AND a.next_attempt_at <= now()) OR (a.status = 'sending' AND a.lease_until < now()))
            AND NOT EXISTS (SELECT 1 FROM alerts p
                             WHERE p.tenant_id = a.tenant_id AND p.incident_id = a.incident_id AND p.seq < a.seq
                               AND p.status IN ('pending', 'sending'))
          ORDER BY a.next_attempt_at
          LIMIT $2
          FOR UPDATE OF a SKIP LOCKED
       )
       UPDATE alerts a
          SET status = 'sending', attempts = a.attempts + 1, lease_until = now() + $3 * interval '1 millisecond', updated_at = now(),
              uncertain_attempts = a.uncertain_attempts + CASE WHEN due.prev_status = 'sending' THEN 1 ELSE 0 END,
              last_outcome = CASE WHEN due.prev_status = 'sending' THEN 'interrupted' ELSE a.last_outcome END
         FROM due
        WHERE a.tenant_id = due.tenant_id AND a.id = due.id
        RETURNING a.*, (due.prev_status = 'sending' OR due.prev_outcome = 'timeout') AS retry_after_uncertain,
          (SELECT json_build_object('anomalyCount', SUM(i.anomaly_count), 'firstSeen', MIN(i.first_seen), 'lastSeen', MAX(i.last_seen))
             FROM alerts i WHERE i.tenant_id = a.tenant_id AND i.incident_id = a.incident_id AND i.kind <> 'recovery') AS incident`,
      [tenantIds, limit, leaseMs],
    );
    return rows.map((r) => {
      const inc = r.incident as { anomalyCount: number; firstSeen: string; lastSeen: string };
      const row = toRow(r);
      return {
        ...row,
        retryAfterUncertain: Boolean(r.retry_after_uncertain),
        incident:
          row.kind === 'recovery' || !inc?.firstSeen
            ? { anomalyCount: row.anomalyCount, firstSeen: row.firstSeen, lastSeen: row.lastSeen }
            : {
                anomalyCount: Number(inc.anomalyCount),
                firstSeen: new Date(inc.firstSeen),
                lastSeen: new Date(inc.lastSeen),
              },
      };
    });
  }

  /**
   * Records the outcome of the attempt numbered `attempt`. A sender whose lease was taken over
   * (its attempt number is no longer the row's) changes nothing. Returns whether it applied.
   */
  async finishAttempt(
    tenantId: string,
    id: string,
    attempt: number,
    result: {
      status: 'sent' | 'pending' | 'failed' | 'skipped';
      outcome: DeliveryOutcome;
      error?: string | null;
      retryInMs?: number;
      target?: 'tenant' | 'default' | null;
      payload?: unknown;
      uncertain?: boolean;
      /** How it was sent, and for a bot the channel and Slack's message ts once known. */
      slack?: { transport: 'webhook' | 'bot'; channel?: string; ts?: string };
    },
  ): Promise<boolean> {
    const [rows]: [unknown[], number] = await this.dataSource.query(
      `UPDATE alerts
          SET status = $4, last_outcome = $5, last_error = $6,
              next_attempt_at = CASE WHEN $4 = 'pending' THEN now() + $7 * interval '1 millisecond' ELSE next_attempt_at END,
              lease_until = NULL, target = COALESCE($8, target), payload = COALESCE($9::jsonb, payload),
              sent_at = CASE WHEN $4 = 'sent' THEN now() ELSE sent_at END,
              uncertain_attempts = uncertain_attempts + CASE WHEN $10 THEN 1 ELSE 0 END,
              transport = COALESCE($11, transport), slack_channel = COALESCE($12, slack_channel), slack_ts = COALESCE($13, slack_ts),
              updated_at = now()
        WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND attempts = $3
        RETURNING id`,
      [
        tenantId,
        id,
        attempt,
        result.status,
        result.outcome,
        result.error ?? null,
        result.retryInMs ?? 0,
        result.target ?? null,
        result.payload === undefined ? null : JSON.stringify(result.payload),
        result.uncertain ?? false,
        result.slack?.transport ?? null,
        result.slack?.channel ?? null,
        result.slack?.ts ?? null,
      ],
    );
    return rows.length > 0;
  }

  /**
   * Events of the service scored normal after `after` and up to `until`, counted up to `cap`: what
   * a recovery message says about the traffic since the last anomaly (none may mean the service is down).
   */
  async normalEventsBetween(tenantId: string, service: string, after: Date, until: Date, cap: number): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `SELECT COUNT(*)::int AS n FROM (
         SELECT 1 FROM events
          WHERE tenant_id = $1 AND service = $2 AND received_at > $3 AND received_at <= $4 AND prediction = 1
          LIMIT $5) x`,
      [tenantId, service, after, until, cap],
    );
    return Number(n);
  }

  /**
   * Which of these tenants have work for the alert job (system job, across tenants): anomalies not
   * yet through the policy, or alerts still open (a recovery may be due). Both read small partial
   * indexes, so an idle tick costs two cheap queries whatever the number of tenants.
   */
  async tenantsWithWork(tenantIds: string[]): Promise<{ pending: Set<string>; open: Set<string> }> {
    if (!tenantIds.length) return { pending: new Set(), open: new Set() };
    const rows: { tenant_id: string; what: 'pending' | 'open' }[] = await this.dataSource.query(
      `SELECT t.tenant_id, 'pending' AS what FROM unnest($1::text[]) AS t(tenant_id)
        WHERE EXISTS (SELECT 1 FROM detections d WHERE d.tenant_id = t.tenant_id AND d.alert_pending)
       UNION ALL
       SELECT t.tenant_id, 'open' FROM unnest($1::text[]) AS t(tenant_id)
        WHERE EXISTS (SELECT 1 FROM alerts a WHERE a.tenant_id = t.tenant_id AND a.resolved_at IS NULL AND a.kind <> 'recovery')`,
      [tenantIds],
    );
    const out = { pending: new Set<string>(), open: new Set<string>() };
    for (const r of rows) out[r.what].add(r.tenant_id);
    return out;
  }

  /** Messages waiting to be delivered (pending or being sent), per tenant (system job, for the backlog gauge). */
  async backlogByTenant(tenantIds: string[]): Promise<Map<string, number>> {
    const rows: { tenant_id: string; n: string }[] = await this.dataSource.query(
      `SELECT tenant_id, COUNT(*)::bigint AS n FROM alerts WHERE tenant_id = ANY($1::text[]) AND status IN ('pending', 'sending') GROUP BY tenant_id`,
      [tenantIds],
    );
    return new Map(rows.map((r) => [r.tenant_id, Number(r.n)]));
  }

  /** The tenant's alerts, newest first, after the one at `afterSeq`. */
  async list(tenantId: string, filter: AlertFilter, limit: number, afterSeq?: number): Promise<AlertRow[]> {
    const rows = await this.dataSource.query(
      `SELECT * FROM alerts
        WHERE tenant_id = $1
          AND ($2::text IS NULL OR service = $2)
          AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR kind = $4)
          AND ($5::bigint IS NULL OR seq < $5)
        ORDER BY seq DESC
        LIMIT $6`,
      [tenantId, filter.service ?? null, filter.status ?? null, filter.kind ?? null, afterSeq ?? null, limit],
    );
    return rows.map(toRow);
  }

  async findById(tenantId: string, id: string): Promise<AlertRow | null> {
    const [row] = await this.dataSource.query(`SELECT * FROM alerts WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return row ? toRow(row) : null;
  }
}
