import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { DetectionRow, insertDetections, LATENCY_IN_RANGE } from './event.repository';

export interface SeriesStateRow {
  service: string;
  lastMinute: Date;
  detectors: Record<string, unknown>;
}

export interface PartialRow {
  service: string;
  minute: Date;
  count: number;
  errors: number;
  latencies: number[];
}

export interface ClosedMinute {
  service: string;
  minute: Date;
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  sketch: Buffer | null;
  /** Events that arrived after their minute had closed (merged into the counts, not re-scored). */
  late: boolean;
}

export interface CloseResult {
  minutes: ClosedMinute[];
  states: SeriesStateRow[];
  detections: DetectionRow[];
}

/** Per-minute series aggregates: partials written with events, closed minutes, detector state. */
@Injectable()
export class SeriesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Closes the tenant's minutes before `horizon` in one transaction, under a transaction-scoped
   * advisory lock (so one replica at a time): hands the stored detector states and the pending
   * partials to `close`, then stores what it returns (closed minutes, new states, detections) and
   * deletes the consumed partials. A crash anywhere leaves the partials for the next run.
   * Returns null when another replica is closing this tenant.
   */
  async close(
    tenantId: string,
    horizon: Date,
    close: (states: SeriesStateRow[], partials: PartialRow[]) => CloseResult | Promise<CloseResult>,
  ): Promise<CloseResult | null> {
    return this.dataSource.transaction(async (m) => {
      const [{ locked }] = await m.query(`SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`, [`series:${tenantId}`]);
      if (!locked) return null;
      const states: SeriesStateRow[] = (
        await m.query(`SELECT service, last_minute, detectors FROM series_state WHERE tenant_id = $1`, [tenantId])
      ).map((r: Record<string, unknown>) => ({ service: r.service as string, lastMinute: r.last_minute as Date, detectors: r.detectors as Record<string, unknown> }));
      const partials: PartialRow[] = (
        await m.query(
          `SELECT service, minute, count, errors, ARRAY(SELECT l FROM unnest(latencies) AS l WHERE ${LATENCY_IN_RANGE('l')}) AS latencies
             FROM series_partials WHERE tenant_id = $1 AND minute < $2 ORDER BY service, minute`,
          [tenantId, horizon],
        )
      ).map((r: Record<string, unknown>) => ({
        service: r.service as string,
        minute: r.minute as Date,
        count: Number(r.count),
        errors: Number(r.errors),
        latencies: (r.latencies as number[]) ?? [],
      }));
      const result = await close(states, partials);
      await this.writeMinutes(m, tenantId, result.minutes);
      if (result.states.length) {
        await m.query(
          `INSERT INTO series_state (tenant_id, service, last_minute, detectors, updated_at)
           SELECT $1, s.service, s.last_minute, s.detectors, now()
             FROM jsonb_to_recordset($2::jsonb) AS s(service text, last_minute timestamptz, detectors jsonb)
           ON CONFLICT (tenant_id, service) DO UPDATE SET last_minute = excluded.last_minute, detectors = excluded.detectors, updated_at = now()`,
          [tenantId, JSON.stringify(result.states.map((s) => ({ service: s.service, last_minute: s.lastMinute.toISOString(), detectors: s.detectors })))],
        );
      }
      await m.query(`DELETE FROM series_partials WHERE tenant_id = $1 AND minute < $2`, [tenantId, horizon]);
      await insertDetections(m, tenantId, result.detections);
      return result;
    });
  }

  private async writeMinutes(m: EntityManager, tenantId: string, minutes: ClosedMinute[]): Promise<void> {
    if (!minutes.length) return;
    await m.query(
      `INSERT INTO series_minutes (tenant_id, service, minute, count, errors, latency_p50, latency_p95, latency_p99, latency_sketch, late)
       SELECT $1, x.service, x.minute, x.count, x.errors, x.p50, x.p95, x.p99, decode(x.sketch, 'base64'), CASE WHEN x.late THEN x.count ELSE 0 END
         FROM jsonb_to_recordset($2::jsonb) AS x(service text, minute timestamptz, count int, errors int, p50 float8, p95 float8, p99 float8, sketch text, late bool)
       ON CONFLICT (tenant_id, service, minute) DO UPDATE SET
         count = series_minutes.count + excluded.count,
         errors = series_minutes.errors + excluded.errors,
         late = series_minutes.late + excluded.late`,
      [
        tenantId,
        JSON.stringify(
          minutes.map((x) => ({
            service: x.service,
            minute: x.minute.toISOString(),
            count: x.count,
            errors: x.errors,
            p50: x.p50,
            p95: x.p95,
            p99: x.p99,
            sketch: x.sketch?.toString('base64') ?? null,
            late: x.late,
          })),
        ),
      ],
    );
  }

  /** The tenant's closed minutes of a service in [from, to), oldest first. */
  async minutes(tenantId: string, service: string, from: Date, to: Date): Promise<{ minute: Date; count: number; errors: number; p95: number | null; late: number }[]> {
    const rows = await this.dataSource.query(
      `SELECT minute, count, errors, latency_p95, late FROM series_minutes WHERE tenant_id = $1 AND service = $2 AND minute >= $3 AND minute < $4 ORDER BY minute`,
      [tenantId, service, from, to],
    );
    return rows.map((r: Record<string, unknown>) => ({
      minute: r.minute as Date,
      count: Number(r.count),
      errors: Number(r.errors),
      p95: r.latency_p95 === null ? null : Number(r.latency_p95),
      late: Number(r.late),
    }));
  }
}
