import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface RetrainStateRow {
  tenantId: string;
  lastTrainedAt: Date | null;
  lastVersion: number | null;
  lastReason: string | null;
  lastSource: string | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  lokiCursorNs: bigint | null;
}

/** Per-tenant retraining state and the Loki pull cursor; also the job locks that keep replicas apart. */
@Injectable()
export class RetrainStateRepository {
  constructor(private readonly dataSource: DataSource) {}

  async get(tenantId: string): Promise<RetrainStateRow> {
    const rows = await this.dataSource.query(`SELECT * FROM retrain_state WHERE tenant_id = $1`, [tenantId]);
    const r = rows[0];
    return {
      tenantId,
      lastTrainedAt: r?.last_trained_at ?? null,
      lastVersion: r?.last_version ?? null,
      lastReason: r?.last_reason ?? null,
      lastSource: r?.last_source ?? null,
      lastError: r?.last_error ?? null,
      lastErrorAt: r?.last_error_at ?? null,
      lokiCursorNs: r?.loki_cursor_ns === null || r?.loki_cursor_ns === undefined ? null : BigInt(r.loki_cursor_ns),
    };
  }

  async recordTraining(tenantId: string, at: Date, version: number, reason: string, source: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO retrain_state (tenant_id, last_trained_at, last_version, last_reason, last_source, last_error, updated_at)
       VALUES ($1, $2, $3, $4, $5, NULL, now())
       ON CONFLICT (tenant_id) DO UPDATE SET last_trained_at = $2, last_version = $3, last_reason = $4, last_source = $5,
         last_error = NULL, updated_at = now()`,
      [tenantId, at, version, reason, source],
    );
  }

  async recordError(tenantId: string, error: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO retrain_state (tenant_id, last_error, last_error_at, updated_at) VALUES ($1, $2, now(), now())
       ON CONFLICT (tenant_id) DO UPDATE SET last_error = $2, last_error_at = now(), updated_at = now()`,
      [tenantId, error.slice(0, 2000)],
    );
  }

  async setLokiCursor(tenantId: string, cursorNs: bigint): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO retrain_state (tenant_id, loki_cursor_ns, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (tenant_id) DO UPDATE SET loki_cursor_ns = GREATEST(COALESCE(retrain_state.loki_cursor_ns, 0), $2), updated_at = now()`,
      [tenantId, cursorNs.toString()],
    );
  }

  /**
   * Runs `fn` while holding the tenant's advisory lock for `job`, on its own connection; returns
   * `{ ran: false }` at once when another replica (or process) holds it.
   */
  async withTenantLock<T>(tenantId: string, job: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query(`SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [`${job}:${tenantId}`]);
      if (!locked) return { ran: false };
      try {
        return { ran: true, value: await fn() };
      } finally {
        await runner.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`${job}:${tenantId}`]).catch(() => undefined);
      }
    } finally {
      await runner.release();
    }
  }
}
