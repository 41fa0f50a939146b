import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Event-time series and incidents (issue 12):
 * - per-minute partials also carry the newest event time, the events' response sizes (as sums of
 *   ln(1 + bytes)) and how many events were scored anomalous, so every signal is judged per minute;
 * - a per-tenant watermark (newest event time seen, and when it last moved on the wall clock);
 * - gaps: runs of empty minutes that were not walked one by one;
 * - incidents: what alerting opens, escalates and closes per service, in event time; detections and
 *   alert messages point at their incident.
 */
export class EventTimeIncidents1764300000000 implements MigrationInterface {
  name = 'EventTimeIncidents1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE series_partials
        ADD COLUMN max_ts        timestamptz,
        ADD COLUMN anomalies     integer          NOT NULL DEFAULT 0,
        ADD COLUMN bytes_n       integer          NOT NULL DEFAULT 0,
        ADD COLUMN bytes_log_sum double precision NOT NULL DEFAULT 0,
        ADD COLUMN bytes_log_sq  double precision NOT NULL DEFAULT 0,
        ADD COLUMN bytes_log_max double precision,
        ADD COLUMN bytes_log_min double precision`);
    await q.query(`
      ALTER TABLE series_minutes
        ADD COLUMN anomalies    integer NOT NULL DEFAULT 0,
        ADD COLUMN bytes_geomean double precision`);
    await q.query(`
      CREATE TABLE series_watermarks (
        tenant_id     text        NOT NULL PRIMARY KEY,
        max_event_ts  timestamptz NOT NULL,
        advanced_at   timestamptz NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE series_gaps (
        tenant_id  text        NOT NULL,
        service    text        NOT NULL,
        gap_from   timestamptz NOT NULL,
        gap_to     timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, service, gap_from)
      )`);
    await q.query(`
      CREATE TABLE incidents (
        tenant_id        text        NOT NULL,
        id               uuid        NOT NULL,
        seq              bigint      GENERATED ALWAYS AS IDENTITY,
        service          text        NOT NULL,
        status           text        NOT NULL CHECK (status IN ('open', 'resolved')),
        severity         text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        direction        text,
        started_at       timestamptz NOT NULL,
        detected_at      timestamptz NOT NULL,
        last_evidence_at timestamptz NOT NULL,
        ended_at         timestamptz,
        signals          jsonb       NOT NULL,
        anomaly_count    integer     NOT NULL DEFAULT 0,
        notified_severity text       CHECK (notified_severity IN ('info', 'warning', 'critical')),
        last_message_at  timestamptz,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id)
      )`);
    await q.query(`CREATE INDEX incidents_tenant_seq_idx ON incidents (tenant_id, seq DESC)`);
    await q.query(`CREATE UNIQUE INDEX incidents_one_open_idx ON incidents (tenant_id, service) WHERE status = 'open'`);
    await q.query(`ALTER TABLE detections ADD COLUMN incident_id uuid`);
    await q.query(`CREATE INDEX detections_tenant_incident_idx ON detections (tenant_id, incident_id) WHERE incident_id IS NOT NULL`);
    await q.query(`ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_kind_check`);
    await q.query(`ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('open', 'escalate', 'renotify', 'recovery'))`);
    // Alerts are now messages of incidents (one open incident per service is kept by incidents_one_open_idx);
    // alerts opened by the old per-anomaly policy are closed so their services start afresh.
    await q.query(`DROP INDEX IF EXISTS alerts_one_open_incident_idx`);
    await q.query(`UPDATE alerts SET resolved_at = now() WHERE resolved_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM alerts WHERE kind = 'escalate'`);
    await q.query(
      `CREATE UNIQUE INDEX alerts_one_open_incident_idx ON alerts (tenant_id, service) WHERE kind = 'open' AND resolved_at IS NULL`,
    );
    await q.query(`ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_kind_check`);
    await q.query(`ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('open', 'renotify', 'recovery'))`);
    await q.query(`DROP INDEX detections_tenant_incident_idx`);
    await q.query(`ALTER TABLE detections DROP COLUMN incident_id`);
    await q.query(`DROP TABLE incidents`);
    await q.query(`DROP TABLE series_gaps`);
    await q.query(`DROP TABLE series_watermarks`);
    await q.query(`ALTER TABLE series_minutes DROP COLUMN anomalies, DROP COLUMN bytes_geomean`);
    await q.query(`ALTER TABLE series_partials DROP COLUMN max_ts, DROP COLUMN anomalies, DROP COLUMN bytes_n, DROP COLUMN bytes_log_sum, DROP COLUMN bytes_log_sq, DROP COLUMN bytes_log_max, DROP COLUMN bytes_log_min`);
  }
}
