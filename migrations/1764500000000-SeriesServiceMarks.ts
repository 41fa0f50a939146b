import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `series_service_marks`: per tenant and service, the newest event time the series job has seen for
 * the service, and when it last moved forward — in the tenant's event time (the tenant's newest event
 * time then) and on the wall clock. A service whose events are still arriving behind its tenant's
 * newest (one service backfilled or catching up while the others are live) is held at its own newest
 * event time minus the grace (SeriesRepository.serviceHorizons). Keyed by tenant first (distributable by
 * tenant, as the other tables).
 */
export class SeriesServiceMarks1764500000000 implements MigrationInterface {
  name = 'SeriesServiceMarks1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE series_service_marks (
        tenant_id        text        NOT NULL,
        service          text        NOT NULL,
        max_event_ts     timestamptz NOT NULL,
        tenant_event_ts  timestamptz NOT NULL,
        advanced_at      timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, service)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE series_service_marks`);
  }
}
