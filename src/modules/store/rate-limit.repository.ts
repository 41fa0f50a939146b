import { Injectable } from '@nestjs/common';
import { Pool, QueryResult } from 'pg';
import { DataSource } from 'typeorm';

const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;

/** Per-tenant request counters in fixed windows, shared by all replicas through PostgreSQL. */
@Injectable()
export class RateLimitRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Counts `n` requests in the tenant's window and returns the window's count so far. */
  async hit(tenantId: string, windowStart: Date, n = 1): Promise<number> {
    if (!Number.isInteger(n) || n < 1) throw new Error(`invalid hit count ${n}`);
    if (!TENANT.test(tenantId)) throw new Error(`invalid tenant id ${JSON.stringify(tenantId)}`);
    // One round trip: a parameterless multi-statement query (values are a validated tenant id and
    // an integer, so inlining them is safe). The counter is not data: losing the last hits in a
    // crash is harmless, so its commit does not wait for the WAL flush (events always do).
    const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
    const results = (await pool.query(
      `BEGIN; SET LOCAL synchronous_commit TO OFF;
       INSERT INTO rate_limit_windows (tenant_id, window_start, hits)
       VALUES ('${tenantId}', to_timestamp(${Math.floor(windowStart.getTime() / 1000)}), ${n})
       ON CONFLICT (tenant_id, window_start) DO UPDATE SET hits = rate_limit_windows.hits + ${n}
       RETURNING hits; COMMIT;`,
    )) as unknown as QueryResult[];
    const counted = results.find((r) => r.command === 'INSERT');
    if (!counted?.rows.length) throw new Error('rate limit counter returned no row');
    return Number(counted.rows[0].hits);
  }

  /** System job: drops windows of every tenant older than `before`. */
  async pruneAllTenantsBefore(before: Date): Promise<number> {
    const [, count] = await this.dataSource.query(`DELETE FROM rate_limit_windows WHERE window_start < $1`, [before]);
    return Number(count ?? 0);
  }
}
