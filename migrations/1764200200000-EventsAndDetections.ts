import { MigrationInterface, QueryRunner } from 'typeorm';

export class EventsAndDetections1764200200000 implements MigrationInterface {
  name = 'EventsAndDetections1764200200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE events (
        tenant_id     text             NOT NULL,
        id            text             NOT NULL,
        service       text             NOT NULL,
        ts            timestamptz      NOT NULL,
        received_at   timestamptz      NOT NULL DEFAULT now(),
        source        text             NOT NULL,
        duration_ms   double precision,
        status_code   smallint,
        bytes         bigint,
        metadata      jsonb            NOT NULL,
        score         double precision NOT NULL,
        prediction    smallint         NOT NULL,
        model_version integer,
        baseline      text             CHECK (baseline IN ('warming', 'ready')),
        shipped_at    timestamptz,
        ship_error    text,
        PRIMARY KEY (tenant_id, id)
      )`);
    // The Loki outbox: unshipped events, kept small by shipping.
    await q.query(`CREATE INDEX events_outbox_idx ON events (tenant_id, received_at) WHERE shipped_at IS NULL`);
    await q.query(`CREATE INDEX events_tenant_received_idx ON events (tenant_id, received_at DESC)`);
    await q.query(`CREATE INDEX events_tenant_service_received_idx ON events (tenant_id, service, received_at DESC)`);
    await q.query(`
      CREATE TABLE detections (
        tenant_id     text             NOT NULL,
        id            uuid             NOT NULL,
        kind          text             NOT NULL CHECK (kind IN ('event', 'series')),
        event_id      text,
        service       text             NOT NULL,
        ts            timestamptz      NOT NULL,
        score         double precision NOT NULL,
        prediction    smallint         NOT NULL,
        drift_alert   boolean          NOT NULL DEFAULT false,
        model_version integer,
        baseline      boolean          NOT NULL DEFAULT false,
        explanation   jsonb,
        metadata      jsonb,
        duration_ms   double precision,
        status_code   smallint,
        metric        text,
        value         double precision,
        expected      double precision,
        likelihood    double precision,
        feedback      text CHECK (feedback IN ('false_positive', 'confirmed')),
        feedback_at   timestamptz,
        created_at    timestamptz      NOT NULL DEFAULT now(),
        shipped_at    timestamptz,
        PRIMARY KEY (tenant_id, id)
      )`);
    await q.query(`CREATE INDEX detections_outbox_idx ON detections (tenant_id, created_at) WHERE shipped_at IS NULL`);
    await q.query(`CREATE UNIQUE INDEX detections_tenant_event_idx ON detections (tenant_id, event_id) WHERE event_id IS NOT NULL`);
    await q.query(`CREATE INDEX detections_tenant_ts_idx ON detections (tenant_id, ts DESC, id DESC)`);
    await q.query(`CREATE INDEX detections_tenant_service_ts_idx ON detections (tenant_id, service, ts DESC, id DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE detections`);
    await q.query(`DROP TABLE events`);
  }
}
