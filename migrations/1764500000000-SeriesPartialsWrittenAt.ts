import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `series_partials.written_at`: when (database clock, the writing transaction's start) a partial row
 * was stored. The series job holds back a service whose events are still arriving behind its
 * tenant's newest event time (SeriesRepository.serviceHolds): "still arriving" is a partial written
 * within SERIES_GRACE_SECONDS. `now()` is not volatile, so existing rows take the migration's time
 * from the catalogue without a rewrite of the table.
 */
export class SeriesPartialsWrittenAt1764500000000 implements MigrationInterface {
  name = 'SeriesPartialsWrittenAt1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE series_partials ADD COLUMN written_at timestamptz NOT NULL DEFAULT now()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE series_partials DROP COLUMN written_at`);
  }
}
