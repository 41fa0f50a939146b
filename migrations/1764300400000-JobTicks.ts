import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The last run of each per-tenant periodic job (scheduler, series closing, alert job, retention),
 * written under the job's advisory lock when a run starts: a replica whose timer fires later in the
 * same interval sees that the interval's run is done and skips it.
 */
export class JobTicks1764300400000 implements MigrationInterface {
  name = 'JobTicks1764300400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE job_ticks (
        tenant_id    text        NOT NULL,
        job          text        NOT NULL,
        started_at   timestamptz NOT NULL,
        interval_ms  bigint      NOT NULL,
        finished_at  timestamptz,
        outcome      text        CHECK (outcome IN ('ran', 'failed')),
        error        text,
        runs         bigint      NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, job)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE job_ticks`);
  }
}
