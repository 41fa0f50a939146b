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
  /**
   * duration_ms of the minute's events in range; as read by {@link SeriesRepository.close}, the
   * comma-separated text (parsed where the minutes are closed, in the series worker, not on the
   * event loop that answers requests).
   */
  latencies: number[] | string;
  anomalies: number;
  bytesN: number;
  bytesLogSum: number;
  bytesLogSq: number;
  /** Largest and smallest ln(1 + bytes) (null without sizes). */
  bytesLogMax: number | null;
  bytesLogMin: number | null;
}

/** How far a tenant's event time has got (SPEC §7: minutes close on an event-time watermark). */
export interface WatermarkSettings {
  /** Wall clock now, epoch ms. */
  now: number;
  /** SERIES_GRACE_SECONDS in ms: how far behind the newest event time a minute may still receive events. */
  graceMs: number;
  /** SERIES_IDLE_SECONDS in ms: after this long with no newer event time, the wall clock moves the watermark on. */
  idleMs: number;
}

export interface Watermark {
  /** The newest event time seen for the tenant (null before its first event). */
  maxEventTs: Date | null;
  /** When (wall clock) the newest event time last moved forward. */
  advancedAt: Date | null;
  /** The watermark itself: minutes that end at or before it are closed. */
  watermark: Date | null;
}

/** A run of empty minutes that was skipped rather than fed one by one. */
export interface SeriesGap {
  service: string;
  from: Date;
  to: Date;
}

export interface ClosedMinute {
  service: string;
  minute: Date;
  count: number;
  errors: number;
  anomalies: number;
  /** Geometric mean of the minute's response sizes (null without any). */
  bytesGeomean: number | null;
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
  gaps: SeriesGap[];
}

/** The event-time watermark from the newest event time and the wall clock (see WatermarkSettings). */
export function watermarkOf(maxEventTs: number, advancedAt: number, w: WatermarkSettings): number {
  // A clock running ahead of ours must not close minutes that have not happened yet.
  const eventTime = Math.min(maxEventTs, w.now);
  const idleFor = Math.max(0, w.now - advancedAt - w.idleMs);
  return Math.min(eventTime + idleFor, w.now) - w.graceMs;
}

/**
 * SQL condition: partial row `alias` is not held back by the per-service holds in jsonb parameter
 * `param` (`[{service, until}]`, see SeriesRepository.serviceHorizons).
 */
const NOT_HELD = (alias: string, param: string) =>
  `NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(${param}::jsonb) AS h(service text, until timestamptz) WHERE h.service = ${alias}.service AND ${alias}.minute >= h.until)`;

/** Rows per statement when the series job stores what it closed (keeps each serialisation short). */
const WRITE_CHUNK = 500;

/**
 * Partial rows one close pass reads at most (a minute holds one row per service per write, so a
 * single minute of many small writes may exceed it: a pass always takes at least one minute). A
 * backlog (a backfill, a restart after downtime) is closed in passes of this size, each its own
 * transaction: memory stays bounded and no single hand-over to the series worker holds the event
 * loop for long. Closing is a fold over minutes, so the passes give what one pass would.
 */
export const CLOSE_PASS_MAX_PARTIALS = 5_000;

/** Per-minute series aggregates: partials written with events, closed minutes, detector state. */
@Injectable()
export class SeriesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Closes the tenant's minutes that end before its event-time watermark, in one transaction under a
   * transaction-scoped advisory lock (one replica at a time). The watermark is the newest event time
   * seen (stored, or in the pending partials) minus the grace; the wall clock moves it on only once
   * the tenant's event time has stood still for the idle time (a tenant that stopped sending).
   * Hands the stored detector states, the pending partials of minutes before the horizon and the
   * horizon (epoch ms, a minute boundary) to `close`, then stores what it returns (closed minutes,
   * new states, detections, gaps) and deletes the consumed partials. A crash anywhere leaves the
   * partials for the next run. Services still receiving events behind the tenant's newest are held
   * at their own horizons (see {@link serviceHorizons}): computed in this pass unless given
   * (`activeHorizons`, from an earlier pass of the same run: one scan of the pending partials per
   * run, not per pass) and returned as `activeHorizons` for the next. Returns null when another
   * replica is closing this tenant, or when the tenant has no event yet.
   */
  async close(
    tenantId: string,
    w: WatermarkSettings,
    close: (states: SeriesStateRow[], partials: PartialRow[], horizon: number, holds: Record<string, number>) => CloseResult | Promise<CloseResult>,
    maxPartials = CLOSE_PASS_MAX_PARTIALS,
    activeHorizons?: Record<string, number>,
  ): Promise<(CloseResult & { more: boolean; activeHorizons: Record<string, number> }) | null> {
    return this.dataSource.transaction(async (m) => {
      const [{ locked }] = await m.query(`SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`, [`series:${tenantId}`]);
      if (!locked) return null;
      const mark = await this.advanceWatermark(m, tenantId, w.now);
      if (!mark) return null;
      const due = Math.floor(watermarkOf(mark.maxEventTs, mark.advancedAt, w) / 60_000) * 60_000;
      const states: SeriesStateRow[] = (
        await m.query(`SELECT service, last_minute, detectors FROM series_state WHERE tenant_id = $1`, [tenantId])
      ).map((r: Record<string, unknown>) => ({ service: r.service as string, lastMinute: r.last_minute as Date, detectors: r.detectors as Record<string, unknown> }));
      activeHorizons ??= await this.serviceHorizons(m, tenantId, w, mark.maxEventTs, states);
      const holds = Object.fromEntries(Object.entries(activeHorizons).filter(([, until]) => until < due));
      const held = JSON.stringify(Object.entries(holds).map(([service, until]) => ({ service, until: new Date(until).toISOString() })));
      const horizon = await this.passHorizon(m, tenantId, due, maxPartials, held);
      const partials: PartialRow[] = (
        await m.query(
          // Summed per service and minute here (a minute of live single events has one partial row per
          // request): the rows read, parsed and handed to the worker are minutes, not writes.
          `SELECT service, minute, SUM(count) AS count, SUM(errors) AS errors, string_agg(NULLIF(latencies, ''), ',') AS latencies,
                  SUM(anomalies) AS anomalies, SUM(bytes_n) AS bytes_n, SUM(bytes_log_sum) AS bytes_log_sum,
                  SUM(bytes_log_sq) AS bytes_log_sq, MAX(bytes_log_max) AS bytes_log_max, MIN(bytes_log_min) AS bytes_log_min
             FROM (SELECT service, minute, count, errors,
                          array_to_string(ARRAY(SELECT l FROM unnest(latencies) AS l WHERE ${LATENCY_IN_RANGE('l')}), ',') AS latencies,
                          anomalies, bytes_n, bytes_log_sum, bytes_log_sq, bytes_log_max, bytes_log_min
                     FROM series_partials q WHERE tenant_id = $1 AND minute < $2 AND ${NOT_HELD('q', '$3')}) p
            GROUP BY service, minute ORDER BY service, minute`,
          [tenantId, new Date(horizon), held],
        )
      ).map((r: Record<string, unknown>) => ({
        service: r.service as string,
        minute: r.minute as Date,
        count: Number(r.count),
        errors: Number(r.errors),
        latencies: (r.latencies as string | null) ?? '',
        anomalies: Number(r.anomalies),
        bytesN: Number(r.bytes_n),
        bytesLogSum: Number(r.bytes_log_sum),
        bytesLogSq: Number(r.bytes_log_sq),
        bytesLogMax: r.bytes_log_max === null ? null : Number(r.bytes_log_max),
        bytesLogMin: r.bytes_log_min === null ? null : Number(r.bytes_log_min),
      }));
      const result = await close(states, partials, horizon, holds);
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
      if (result.gaps.length) {
        await m.query(
          `INSERT INTO series_gaps (tenant_id, service, gap_from, gap_to)
           SELECT $1, g.service, g.gap_from, g.gap_to FROM jsonb_to_recordset($2::jsonb) AS g(service text, gap_from timestamptz, gap_to timestamptz)
           ON CONFLICT (tenant_id, service, gap_from) DO UPDATE SET gap_to = GREATEST(series_gaps.gap_to, excluded.gap_to)`,
          [tenantId, JSON.stringify(result.gaps.map((g) => ({ service: g.service, gap_from: g.from.toISOString(), gap_to: g.to.toISOString() })))],
        );
      }
      await m.query(`DELETE FROM series_partials q WHERE tenant_id = $1 AND minute < $2 AND ${NOT_HELD('q', '$3')}`, [tenantId, new Date(horizon), held]);
      for (let i = 0; i < result.detections.length; i += WRITE_CHUNK) await insertDetections(m, tenantId, result.detections.slice(i, i + WRITE_CHUNK));
      return { ...result, more: horizon < due, activeHorizons };
    });
  }

  /**
   * The end (epoch ms, exclusive, a minute boundary) of this pass: `due`, or earlier when the
   * pending partials before `due` are more than `maxPartials` rows — then the first minute whose
   * rows would pass that number, but never before the first pending minute's end.
   */
  private async passHorizon(m: EntityManager, tenantId: string, due: number, maxPartials: number, held: string): Promise<number> {
    const [row] = await m.query(
      `SELECT minute, (SELECT MIN(minute) FROM series_partials f WHERE tenant_id = $1 AND minute < $2 AND ${NOT_HELD('f', '$4')}) AS first
         FROM series_partials q WHERE tenant_id = $1 AND minute < $2 AND ${NOT_HELD('q', '$4')} ORDER BY minute OFFSET $3 LIMIT 1`,
      [tenantId, new Date(due), maxPartials, held],
    );
    if (!row) return due;
    const cut = (row.minute as Date).getTime();
    const first = (row.first as Date).getTime();
    return Math.min(due, Math.max(cut, first + 60_000));
  }

  /**
   * The horizons (epoch ms, minute boundaries) of the services still receiving events, which hold
   * the tenant's horizon back where they are below it. A service whose
   * newest event time is behind its tenant's while its events are still arriving — one service
   * backfilled or catching up while the others are live — closes only up to its own newest event
   * time minus the grace, as a stream processor's watermark is the least of its active inputs'
   * (Flink's per-split watermarks with idleness). Without it, that service's minutes between its
   * newest event and the tenant's watermark closed empty whenever the job ran between two of its
   * batches: a traffic drop that never happened. "Still arriving" is judged as the watermark is:
   * the service's newest event time moved forward less than the grace ago in the tenant's event
   * time (so a catch-up at any speed, and live traffic, give the same), and less than the idle time
   * ago on the wall clock (a tenant gone quiet altogether). A service that stopped is therefore
   * released once the tenant's watermark has passed its newest event, before any of its empty
   * minutes is due: an outage is noticed as early as without holds. A hold never reopens a closed
   * minute. Records each service's newest event time in `series_service_marks` (the pending
   * partials are scanned whole, grouped by service); returns service → horizon for the services
   * still receiving events.
   */
  private async serviceHorizons(m: EntityManager, tenantId: string, w: WatermarkSettings, tenantEventTs: number, states: SeriesStateRow[]): Promise<Record<string, number>> {
    const rows: { service: string; max_event_ts: Date }[] = await m.query(
      `WITH newest AS (
         SELECT service, COALESCE(MAX(max_ts), MAX(minute)) AS ts FROM series_partials WHERE tenant_id = $1 GROUP BY service
       ), marked AS (
         INSERT INTO series_service_marks AS s (tenant_id, service, max_event_ts, tenant_event_ts, advanced_at)
         SELECT $1, service, ts, $2, $3 FROM newest
         ON CONFLICT (tenant_id, service) DO UPDATE
            SET max_event_ts = excluded.max_event_ts, tenant_event_ts = excluded.tenant_event_ts, advanced_at = excluded.advanced_at
          WHERE excluded.max_event_ts > s.max_event_ts
         RETURNING service, max_event_ts, tenant_event_ts, advanced_at
       )
       SELECT service, max_event_ts FROM marked
        UNION ALL
       SELECT service, max_event_ts FROM series_service_marks s
        WHERE tenant_id = $1 AND tenant_event_ts > $4 AND advanced_at > $5 AND NOT EXISTS (SELECT 1 FROM marked WHERE marked.service = s.service)`,
      [tenantId, new Date(tenantEventTs), new Date(w.now), new Date(tenantEventTs - w.graceMs), new Date(w.now - w.idleMs)],
    );
    const closed = new Map(states.map((s) => [s.service, s.lastMinute.getTime() + 60_000]));
    const horizons: Record<string, number> = {};
    for (const r of rows) {
      const own = Math.floor((Math.min(new Date(r.max_event_ts).getTime(), w.now) - w.graceMs) / 60_000) * 60_000;
      horizons[r.service] = Math.max(own, closed.get(r.service) ?? -Infinity);
    }
    return horizons;
  }

  /**
   * Moves the stored newest event time up to the newest in the pending partials (the partials of the
   * newest minute are found through the (tenant_id, minute) index). Returns the stored values, or
   * null when the tenant has never had an event.
   */
  private async advanceWatermark(m: EntityManager, tenantId: string, now: number): Promise<{ maxEventTs: number; advancedAt: number } | null> {
    const rows: { max_event_ts: Date; advanced_at: Date }[] = await m.query(
      `WITH newest AS (
         -- Partials written before the event-time columns existed have no max_ts: their minute is a lower bound.
         SELECT COALESCE(MAX(p.max_ts), MAX(p.minute)) AS ts FROM series_partials p
          WHERE p.tenant_id = $1 AND p.minute = (SELECT MAX(minute) FROM series_partials WHERE tenant_id = $1)
       )
       INSERT INTO series_watermarks AS w (tenant_id, max_event_ts, advanced_at)
       SELECT $1, ts, $2 FROM newest WHERE ts IS NOT NULL
       ON CONFLICT (tenant_id) DO UPDATE
          SET max_event_ts = excluded.max_event_ts, advanced_at = excluded.advanced_at, updated_at = now()
        WHERE excluded.max_event_ts > w.max_event_ts
       RETURNING max_event_ts, advanced_at`,
      [tenantId, new Date(now)],
    );
    const [row] = rows.length ? rows : await m.query(`SELECT max_event_ts, advanced_at FROM series_watermarks WHERE tenant_id = $1`, [tenantId]);
    return row ? { maxEventTs: new Date(row.max_event_ts).getTime(), advancedAt: new Date(row.advanced_at).getTime() } : null;
  }

  /** The end (exclusive, event time) of the newest minute the tenant's series job has closed (null before any). */
  async closedUntil(tenantId: string): Promise<Date | null> {
    const [row] = await this.dataSource.query(`SELECT MAX(last_minute) + interval '1 minute' AS until FROM series_state WHERE tenant_id = $1`, [tenantId]);
    return row?.until ? new Date(row.until) : null;
  }

  /** The tenant's watermark as the series job sees it now (null before its first event). */
  async watermark(tenantId: string, w: WatermarkSettings): Promise<Watermark> {
    const [row] = await this.dataSource.query(
      `SELECT GREATEST(w.max_event_ts, (SELECT COALESCE(MAX(max_ts), MAX(minute)) FROM series_partials WHERE tenant_id = $1)) AS max_event_ts, w.advanced_at
         FROM (SELECT $1::text AS tenant_id) t LEFT JOIN series_watermarks w ON w.tenant_id = t.tenant_id`,
      [tenantId],
    );
    if (!row?.max_event_ts) return { maxEventTs: null, advancedAt: null, watermark: null };
    const maxEventTs = new Date(row.max_event_ts);
    const advancedAt = row.advanced_at ? new Date(row.advanced_at) : new Date(w.now);
    return { maxEventTs, advancedAt, watermark: new Date(watermarkOf(maxEventTs.getTime(), advancedAt.getTime(), w)) };
  }

  /**
   * Stores closed minutes, {@link WRITE_CHUNK} per statement: a backlog of thousands of minutes
   * would otherwise be serialised (JSON, then the protocol message) in one piece, holding the event
   * loop for a long time.
   */
  private async writeMinutes(m: EntityManager, tenantId: string, all: ClosedMinute[]): Promise<void> {
    for (let i = 0; i < all.length; i += WRITE_CHUNK) await this.writeMinuteChunk(m, tenantId, all.slice(i, i + WRITE_CHUNK));
  }

  private async writeMinuteChunk(m: EntityManager, tenantId: string, minutes: ClosedMinute[]): Promise<void> {
    await m.query(
      `INSERT INTO series_minutes (tenant_id, service, minute, count, errors, latency_p50, latency_p95, latency_p99, latency_sketch, late, anomalies, bytes_geomean)
       SELECT $1, x.service, x.minute, x.count, x.errors, x.p50, x.p95, x.p99, decode(x.sketch, 'base64'), CASE WHEN x.late THEN x.count ELSE 0 END,
              x.anomalies, x.bytes_geomean
         FROM jsonb_to_recordset($2::jsonb) AS x(service text, minute timestamptz, count int, errors int, p50 float8, p95 float8, p99 float8, sketch text,
                                                 late bool, anomalies int, bytes_geomean float8)
       ON CONFLICT (tenant_id, service, minute) DO UPDATE SET
         count = series_minutes.count + excluded.count,
         errors = series_minutes.errors + excluded.errors,
         anomalies = series_minutes.anomalies + excluded.anomalies,
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
            anomalies: x.anomalies,
            bytes_geomean: x.bytesGeomean,
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

  /**
   * Retention of recorded gaps and of the marks of services not heard from since `cutoff` (the
   * per-minute tables are partitioned by day and dropped whole).
   */
  async pruneBefore(tenantId: string, cutoff: Date): Promise<void> {
    await this.dataSource.query(`DELETE FROM series_gaps WHERE tenant_id = $1 AND gap_to < $2`, [tenantId, cutoff]);
    await this.dataSource.query(`DELETE FROM series_service_marks WHERE tenant_id = $1 AND advanced_at < $2`, [tenantId, cutoff]);
  }
}
