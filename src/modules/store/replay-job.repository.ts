import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface ReplayJobRow {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  source: string;
  total: number;
  processed: number;
  error: string | null;
  summary: Record<string, unknown> | null;
  detections: unknown[] | null;
  hasReport: boolean;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const toRow = (r: Record<string, unknown>): ReplayJobRow => ({
  id: r.id as string,
  status: r.status as ReplayJobRow['status'],
  source: r.source as string,
  total: Number(r.total),
  processed: Number(r.processed),
  error: (r.error as string) ?? null,
  summary: (r.summary as Record<string, unknown>) ?? null,
  detections: (r.detections as unknown[]) ?? null,
  hasReport: Boolean(r.has_report),
  createdAt: r.created_at as Date,
  startedAt: (r.started_at as Date) ?? null,
  finishedAt: (r.finished_at as Date) ?? null,
});

const COLUMNS = `id, status, source, total, processed, error, summary, detections, report IS NOT NULL AS has_report, created_at, started_at, finished_at`;

/** Backtest jobs and their results (kept with the job, never as live detections). */
@Injectable()
export class ReplayJobRepository {
  constructor(private readonly dataSource: DataSource) {}

  async create(tenantId: string, id: string, source: string, total: number): Promise<void> {
    await this.dataSource.query(`INSERT INTO replay_jobs (tenant_id, id, status, source, total) VALUES ($1, $2, 'queued', $3, $4)`, [tenantId, id, source, total]);
  }

  async start(tenantId: string, id: string): Promise<void> {
    await this.dataSource.query(`UPDATE replay_jobs SET status = 'running', started_at = now(), heartbeat_at = now() WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  }

  async progress(tenantId: string, id: string, processed: number, total?: number): Promise<void> {
    await this.dataSource.query(`UPDATE replay_jobs SET processed = $3, total = COALESCE($4, total), heartbeat_at = now() WHERE tenant_id = $1 AND id = $2`, [tenantId, id, processed, total ?? null]);
  }

  async finish(tenantId: string, id: string, summary: Record<string, unknown>, detections: unknown[], report: string | null): Promise<void> {
    await this.dataSource.query(
      `UPDATE replay_jobs SET status = 'done', finished_at = now(), processed = total, summary = $3, detections = $4, report = $5 WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id, JSON.stringify(summary), JSON.stringify(detections), report],
    );
  }

  async fail(tenantId: string, id: string, error: string): Promise<void> {
    await this.dataSource.query(`UPDATE replay_jobs SET status = 'failed', finished_at = now(), error = $3 WHERE tenant_id = $1 AND id = $2`, [tenantId, id, error.slice(0, 2000)]);
  }

  async find(tenantId: string, id: string): Promise<ReplayJobRow | null> {
    const rows = await this.dataSource.query(`SELECT ${COLUMNS} FROM replay_jobs WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows.length ? toRow(rows[0]) : null;
  }

  async report(tenantId: string, id: string): Promise<string | null> {
    const rows = await this.dataSource.query(`SELECT report FROM replay_jobs WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0]?.report ?? null;
  }

  /** System job: jobs whose process died (no heartbeat for 2 minutes) can never finish. */
  async failAbandonedAllTenants(): Promise<number> {
    const [, n] = await this.dataSource.query(
      `UPDATE replay_jobs SET status = 'failed', finished_at = now(), error = 'interrupted: the process running it stopped'
        WHERE status IN ('queued', 'running') AND COALESCE(heartbeat_at, created_at) < now() - interval '2 minutes'`,
    );
    return Number(n ?? 0);
  }
}
