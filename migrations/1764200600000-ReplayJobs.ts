import { MigrationInterface, QueryRunner } from 'typeorm';

export class ReplayJobs1764200600000 implements MigrationInterface {
  name = 'ReplayJobs1764200600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE replay_jobs (
        tenant_id   text        NOT NULL,
        id          uuid        NOT NULL,
        status      text        NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        source      text        NOT NULL,
        total       integer     NOT NULL DEFAULT 0,
        processed   integer     NOT NULL DEFAULT 0,
        error       text,
        summary     jsonb,
        detections  jsonb,
        report      text,
        created_at  timestamptz NOT NULL DEFAULT now(),
        started_at  timestamptz,
        heartbeat_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (tenant_id, id)
      )`);
    await q.query(`CREATE INDEX replay_jobs_tenant_created_idx ON replay_jobs (tenant_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE replay_jobs`);
  }
}
