import { MigrationInterface, QueryRunner } from 'typeorm';

export class Series1764200500000 implements MigrationInterface {
  name = 'Series1764200500000';

  async up(q: QueryRunner): Promise<void> {
    // Written in the same statement as the events they summarise (so a retried request adds
    // nothing twice); merged into series_minutes once the minute closes.
    await q.query(`
      CREATE TABLE series_partials (
        tenant_id  text             NOT NULL,
        service    text             NOT NULL,
        minute     timestamptz      NOT NULL,
        count      integer          NOT NULL,
        errors     integer          NOT NULL,
        latencies  double precision[] NOT NULL DEFAULT '{}'
      )`);
    await q.query(`CREATE INDEX series_partials_tenant_minute_idx ON series_partials (tenant_id, minute)`);
    await q.query(`
      CREATE TABLE series_minutes (
        tenant_id      text             NOT NULL,
        service        text             NOT NULL,
        minute         timestamptz      NOT NULL,
        count          integer          NOT NULL,
        errors         integer          NOT NULL,
        latency_p50    double precision,
        latency_p95    double precision,
        latency_p99    double precision,
        latency_sketch bytea,
        late           integer          NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, service, minute)
      )`);
    await q.query(`
      CREATE TABLE series_state (
        tenant_id   text        NOT NULL,
        service     text        NOT NULL,
        last_minute timestamptz NOT NULL,
        detectors   jsonb       NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, service)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE series_state`);
    await q.query(`DROP TABLE series_minutes`);
    await q.query(`DROP TABLE series_partials`);
  }
}
