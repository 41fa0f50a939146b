import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The tables partitioned by UTC day (migration 1764300600000-PartitionByDay), with their partition key. */
export const DAY_PARTITIONED = { events: 'ts', detections: 'ts', series_minutes: 'minute', series_partials: 'minute' } as const;
export type DayPartitionedTable = keyof typeof DAY_PARTITIONED;

const DAY = 86_400_000;

/** One day partition: `<table>_pYYYYMMDD` holding [from, to). */
export interface DayPartition {
  name: string;
  from: Date;
  to: Date;
}

/** The UTC day of `t` as `YYYY-MM-DD`. */
const dayOf = (t: number) => new Date(t - (((t % DAY) + DAY) % DAY)).toISOString().slice(0, 10);

/**
 * Day partitions of the append-heavy tables: created ahead, dropped whole for retention. These are
 * system jobs across all tenants (a partition holds every tenant's rows of that day), never on the
 * request path.
 *
 * Retention first detaches a partition (a catalog change, but under an ACCESS EXCLUSIVE lock on
 * the parent: tried with a short `lock_timeout`, so a long reader never makes inserts queue behind
 * it, and retried on the next run when not granted), then drops the detached table, which no
 * longer locks the parent: removing a day's files takes seconds, and inserts would wait for all
 * of it if the partition were dropped while attached.
 */
@Injectable()
export class PartitionRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Creates the missing partitions of `table` for every UTC day from `from`'s day to `to`'s day
   * (inclusive); rows the default partition held for those days move into them. Returns how many
   * were created. Safe to call from several replicas at once (the SQL function serialises).
   */
  async ensureDayPartitions(table: DayPartitionedTable, from: Date, to: Date): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `SELECT COUNT(*) FILTER (WHERE ad_create_day_partition($1::regclass, d::date))::int AS n
         FROM generate_series($2::date, $3::date, interval '1 day') AS d`,
      [table, dayOf(from.getTime()), dayOf(to.getTime())],
    );
    return n;
  }

  /** The day partitions of `table`, oldest first. */
  async list(table: DayPartitionedTable): Promise<DayPartition[]> {
    const rows: { name: string }[] = await this.dataSource.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass AND c.relname ~ '_p[0-9]{8}$' ORDER BY c.relname`,
      [table],
    );
    return rows.map(({ name }) => {
      const d = name.slice(-8);
      const from = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`);
      return { name, from, to: new Date(from.getTime() + DAY) };
    });
  }

  /**
   * Retention: drops the partitions of `table` whose whole day is before `cutoff`, and deletes
   * the default partition's rows before it (the only row-by-row deletion left, on a table that
   * only holds rows outside every day partition). With `onlyEmpty`, a partition is dropped only
   * when no row is left in it, and the default partition is left alone (detections, pruned per
   * tenant by count). Returns the partitions
   * dropped; one whose lock was not granted in `lockTimeoutMs` stays for the next run.
   */
  async dropDayPartitionsBefore(table: DayPartitionedTable, cutoff: Date, opts: { onlyEmpty?: boolean; lockTimeoutMs?: number } = {}): Promise<string[]> {
    const dropped: string[] = [];
    for (const p of await this.list(table)) {
      if (p.to.getTime() > cutoff.getTime()) continue;
      const detached = await this.dataSource
        .transaction(async (m) => {
          await m.query(`SELECT set_config('lock_timeout', $1, true)`, [`${opts.lockTimeoutMs ?? 100}ms`]);
          if (opts.onlyEmpty) {
            const [{ empty }] = await m.query(`SELECT NOT EXISTS (SELECT 1 FROM ${quoteIdent(p.name)}) AS empty`);
            if (!empty) return false;
          }
          await m.query(`ALTER TABLE ${quoteIdent(table)} DETACH PARTITION ${quoteIdent(p.name)}`);
          return true;
        })
        .catch((e: { code?: string }) => {
          if (e.code === '55P03') return false; // lock_not_available: next run
          throw e;
        });
      if (detached) dropped.push(p.name);
    }
    // Detached day tables, these and any a crash left between detaching and dropping.
    const orphans: { name: string }[] = await this.dataSource.query(
      `SELECT c.relname AS name FROM pg_class c
        WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace AND c.relname ~ ('^' || $1 || '_p[0-9]{8}$')
          AND NOT c.relispartition AND substring(c.relname from '[0-9]{8}$') < to_char($2::timestamptz AT TIME ZONE 'UTC', 'YYYYMMDD')`,
      [table, cutoff],
    );
    for (const { name } of orphans) {
      await this.dataSource.query(`DROP TABLE IF EXISTS ${quoteIdent(name)}`);
      if (!dropped.includes(name)) dropped.push(name);
    }
    if (!opts.onlyEmpty) await this.dataSource.query(`DELETE FROM ${quoteIdent(`${table}_default`)} WHERE ${DAY_PARTITIONED[table]} < $1`, [cutoff]);
    return dropped;
  }
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected table name ${name}`);
  return `"${name}"`;
}
