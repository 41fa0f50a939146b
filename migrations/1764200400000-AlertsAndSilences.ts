import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The alert outbox (one row per Slack message: open, re-notify, recovery), silences, and the
 * marker on detections that says which anomalies the alert pipeline has not looked at yet.
 */
export class AlertsAndSilences1764200400000 implements MigrationInterface {
  name = 'AlertsAndSilences1764200400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE alerts (
        tenant_id          text        NOT NULL,
        id                 uuid        NOT NULL,
        seq                bigint      GENERATED ALWAYS AS IDENTITY,
        incident_id        uuid        NOT NULL,
        service            text        NOT NULL,
        kind               text        NOT NULL CHECK (kind IN ('open', 'renotify', 'recovery')),
        severity           text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        anomaly_count      integer     NOT NULL,
        first_seen         timestamptz NOT NULL,
        last_seen          timestamptz NOT NULL,
        worst              jsonb,
        status             text        NOT NULL DEFAULT 'pending'
                                       CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        attempts           integer     NOT NULL DEFAULT 0,
        next_attempt_at    timestamptz NOT NULL DEFAULT now(),
        lease_until        timestamptz,
        last_outcome       text,
        last_error         text,
        uncertain_attempts integer     NOT NULL DEFAULT 0,
        target             text        CHECK (target IN ('tenant', 'default')),
        payload            jsonb,
        sent_at            timestamptz,
        resolved_at        timestamptz,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id)
      )`);
    await q.query(`CREATE INDEX alerts_tenant_seq_idx ON alerts (tenant_id, seq DESC)`);
    await q.query(`CREATE INDEX alerts_tenant_incident_idx ON alerts (tenant_id, incident_id, seq)`);
    // The outbox backlog: small, so the senders' cross-tenant claim scans it cheaply.
    await q.query(
      `CREATE INDEX alerts_backlog_idx ON alerts (tenant_id, next_attempt_at) WHERE status IN ('pending', 'sending')`,
    );
    // Open incidents: the latest message of each is what new anomalies join.
    await q.query(
      `CREATE INDEX alerts_unresolved_idx ON alerts (tenant_id, service, seq DESC) WHERE resolved_at IS NULL AND kind <> 'recovery'`,
    );
    await q.query(
      `CREATE UNIQUE INDEX alerts_one_open_incident_idx ON alerts (tenant_id, service) WHERE kind = 'open' AND resolved_at IS NULL`,
    );

    await q.query(`
      CREATE TABLE silences (
        tenant_id  text        NOT NULL,
        id         uuid        NOT NULL,
        service    text        NOT NULL,
        reason     text,
        starts_at  timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        ended_at   timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        seq        bigint      GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (tenant_id, id),
        CHECK (expires_at > starts_at)
      )`);
    await q.query(`CREATE INDEX silences_tenant_service_idx ON silences (tenant_id, service, expires_at)`);
    await q.query(`CREATE INDEX silences_tenant_seq_idx ON silences (tenant_id, seq DESC)`);

    // Anomalies stored from now on start pending; those stored before alerting existed never alert.
    await q.query(`ALTER TABLE detections ADD COLUMN alert_pending boolean NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE detections ALTER COLUMN alert_pending SET DEFAULT true`);
    await q.query(`ALTER TABLE detections ADD COLUMN alert_id uuid`);
    await q.query(
      `CREATE INDEX detections_alert_pending_idx ON detections (tenant_id, created_at, id) WHERE alert_pending`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX detections_alert_pending_idx`);
    await q.query(`ALTER TABLE detections DROP COLUMN alert_id`);
    await q.query(`ALTER TABLE detections DROP COLUMN alert_pending`);
    await q.query(`DROP TABLE silences`);
    await q.query(`DROP TABLE alerts`);
  }
}
