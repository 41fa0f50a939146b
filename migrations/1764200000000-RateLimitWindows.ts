import { MigrationInterface, QueryRunner } from 'typeorm';

export class RateLimitWindows1764200000000 implements MigrationInterface {
  name = 'RateLimitWindows1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rate_limit_windows (
        tenant_id    text        NOT NULL,
        window_start timestamptz NOT NULL,
        hits         integer     NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, window_start)
      )`);
    await q.query(`CREATE INDEX rate_limit_windows_window_start_idx ON rate_limit_windows (window_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limit_windows`);
  }
}
