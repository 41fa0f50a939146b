import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export type AlertKind = 'open' | 'escalate' | 'renotify' | 'recovery';
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
  detectionId: string | null;
  kind: 'event' | 'series';
  ts: string;
  score: number;
  durationMs: number | null;
  statusCode: number | null;
  scorer: 'baseline' | 'model' | 'series';
  modelVersion: number | null;
  explanation: {
    summary?: string;
    features?: { name: string; value: number | null; p50: number | null; p99: number | null; contribution: number }[];
  } | null;
  metric?: string | null;
  value?: number | null;
  expected?: number | null;
  /** The incident as it stood when the message was queued (messages of incidents; absent on older rows). */
  incident?: AlertIncidentSnapshot;
}

/** What a message knows of its incident (event times, ISO 8601). */
export interface AlertIncidentSnapshot {
  id: string;
  severity: AlertSeverity;
  direction: 'up' | 'down' | null;
  startedAt: string;
  detectedAt: string;
  lastEvidenceAt: string;
  endedAt: string | null;
  signals: {
    signal: string;
    metric: string | null;
    severity: string;
    direction: string;
    firstAt: string;
    lastAt: string;
    value: number | null;
    expected: number | null;
    ratio: number | null;
    summary: string | null;
    detections: number;
  }[];
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
        WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.tenant_id = t.tenant_id AND i.status = 'open')`,
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
