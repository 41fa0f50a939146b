import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Per-tenant request counters in fixed windows, shared by all replicas through PostgreSQL. */
@Injectable()
export class RateLimitRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Counts one request in the tenant's window and returns the window's count so far. */
  async hit(tenantId: string, windowStart: Date): Promise<number> {
    const rows: { hits: number }[] = await this.dataSource.query(
      `INSERT INTO rate_limit_windows (tenant_id, window_start, hits) VALUES ($1, $2, 1)
       ON CONFLICT (tenant_id, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
       RETURNING hits`,
      [tenantId, windowStart],
    );
    return rows[0].hits;
  }

  /** System job: drops windows of every tenant older than `before`. */
  async pruneAllTenantsBefore(before: Date): Promise<number> {
    const [, count] = await this.dataSource.query(`DELETE FROM rate_limit_windows WHERE window_start < $1`, [before]);
    return Number(count ?? 0);
  }
}
