import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** How a guarded run went: not started (another holder, or this interval's run already done), or ran. */
export type TickRun<T> = { status: 'locked' } | { status: 'done' } | { status: 'ran'; value: T };

/**
 * The locks and tick records of per-tenant periodic jobs (system bookkeeping, one row per tenant
 * and job in `job_ticks`).
 */
@Injectable()
export class JobTickRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Runs `fn` for the tenant's `job` under a PostgreSQL session advisory lock taken on a dedicated
   * connection (`pg_try_advisory_lock`: a held lock answers `locked` at once, never waits).
   *
   * With `intervalMs`, the run also claims the current interval: intervals are aligned on the
   * database clock (bucket = ⌊epoch ms / intervalMs⌋), and the start is recorded under the lock
   * only when the last recorded start lies in an earlier bucket; otherwise the answer is `done`
   * and `fn` does not run. So however many replicas fire in one interval, one runs the job.
   * Without `intervalMs` (a run asked for on purpose) only the lock applies; the start is still
   * recorded, so a timer firing later in the same interval skips.
   *
   * The end of the run (outcome, error) is recorded after `fn`; an error thrown by `fn` is
   * recorded and re-thrown. Database errors are thrown as they come.
   */
  async runOncePerTick<T>(
    tenantId: string,
    job: string,
    intervalMs: number | undefined,
    fn: () => Promise<T>,
    failure: (value: T) => string | undefined = () => undefined,
  ): Promise<TickRun<T>> {
    const key = `job:${job}:${tenantId}`;
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query(`SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [key]);
      if (!locked) return { status: 'locked' };
      try {
        const claimed: unknown[] = await runner.query(
          `INSERT INTO job_ticks AS j (tenant_id, job, started_at, interval_ms)
           VALUES ($1, $2, clock_timestamp(), $3)
           ON CONFLICT (tenant_id, job) DO UPDATE
              SET started_at = EXCLUDED.started_at, interval_ms = EXCLUDED.interval_ms,
                  finished_at = NULL, outcome = NULL, error = NULL
            WHERE $4::boolean
               OR floor(extract(epoch FROM j.started_at) * 1000 / $3) < floor(extract(epoch FROM EXCLUDED.started_at) * 1000 / $3)
           RETURNING started_at`,
          [tenantId, job, intervalMs ?? 1, intervalMs === undefined],
        );
        if (!claimed.length) return { status: 'done' };
        let value: T;
        try {
          value = await fn();
        } catch (e) {
          await this.finish(runner.query.bind(runner), tenantId, job, (e as Error).message);
          throw e;
        }
        await this.finish(runner.query.bind(runner), tenantId, job, failure(value));
        return { status: 'ran', value };
      } finally {
        await runner.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => undefined);
      }
    } finally {
      await runner.release();
    }
  }

  private async finish(
    query: (sql: string, params: unknown[]) => Promise<unknown>,
    tenantId: string,
    job: string,
    error: string | undefined,
  ): Promise<void> {
    await query(
      `UPDATE job_ticks SET finished_at = clock_timestamp(), outcome = $3, error = $4, runs = runs + 1
        WHERE tenant_id = $1 AND job = $2`,
      [tenantId, job, error === undefined ? 'ran' : 'failed', error?.slice(0, 2000) ?? null],
    ).catch(() => undefined);
  }

  /** The tenant's last recorded run of `job` (null when it never ran). */
  async last(
    tenantId: string,
    job: string,
  ): Promise<{ startedAt: Date; finishedAt: Date | null; outcome: 'ran' | 'failed' | null; runs: number } | null> {
    const [r] = await this.dataSource.query(
      `SELECT started_at, finished_at, outcome, runs FROM job_ticks WHERE tenant_id = $1 AND job = $2`,
      [tenantId, job],
    );
    return r
      ? { startedAt: r.started_at, finishedAt: r.finished_at ?? null, outcome: r.outcome ?? null, runs: Number(r.runs) }
      : null;
  }
}
