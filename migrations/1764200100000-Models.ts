import { MigrationInterface, QueryRunner } from 'typeorm';

export class Models1764200100000 implements MigrationInterface {
  name = 'Models1764200100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE models (
        tenant_id    text        NOT NULL,
        version      integer     NOT NULL CHECK (version > 0),
        status       text        NOT NULL CHECK (status IN ('active', 'inactive', 'rejected')),
        source       text        NOT NULL,
        rows         integer     NOT NULL,
        time_from    timestamptz,
        time_to      timestamptz,
        params       jsonb       NOT NULL,
        stats        jsonb       NOT NULL,
        artifact     bytea       NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        activated_at timestamptz,
        PRIMARY KEY (tenant_id, version)
      )`);
    // At most one active version per tenant, enforced by the database.
    await q.query(`CREATE UNIQUE INDEX models_one_active_per_tenant ON models (tenant_id) WHERE status = 'active'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE models`);
  }
}
