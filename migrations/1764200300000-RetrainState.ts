import { MigrationInterface, QueryRunner } from 'typeorm';

export class RetrainState1764200300000 implements MigrationInterface {
  name = 'RetrainState1764200300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE retrain_state (
        tenant_id        text        PRIMARY KEY,
        last_trained_at  timestamptz,
        last_version     integer,
        last_reason      text,
        last_source      text,
        last_error       text,
        last_error_at    timestamptz,
        loki_cursor_ns   numeric(20, 0),
        updated_at       timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX detections_tenant_feedback_idx ON detections (tenant_id, feedback) WHERE feedback IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX detections_tenant_feedback_idx`);
    await q.query(`DROP TABLE retrain_state`);
  }
}
