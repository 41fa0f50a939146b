import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Per-tenant request counters in fixed windows, shared by all replicas through PostgreSQL. */
@Injectable()
export class RateLimitRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Counts one request in the tenant's window and returns the window's count so far. */
  async hit(tenantId: string, windowStart: Date): Promise<number> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      // A counter, not data: losing the last hits in a crash is harmless, so this commit does not
      // wait for the WAL flush (events and detections always do).
      await runner.query('SET LOCAL synchronous_commit TO OFF');
      const rows: { hits: number }[] = await runner.query(
        `INSERT INTO rate_limit_windows (tenant_id, window_start, hits) VALUES ($1, $2, 1)
         ON CONFLICT (tenant_id, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
         RETURNING hits`,
        [tenantId, windowStart],
      );
      await runner.commitTransaction();
      return rows[0].hits;
    } catch (e) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw e;
    } finally {
      await runner.release();
    }
  }

  /** System job: drops windows of every tenant older than `before`. */
  async pruneAllTenantsBefore(before: Date): Promise<number> {
    const [, count] = await this.dataSource.query(`DELETE FROM rate_limit_windows WHERE window_start < $1`, [before]);
    return Number(count ?? 0);
  }
}
