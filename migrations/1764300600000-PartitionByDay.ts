import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The append-heavy tables become partitioned by day (declarative range partitioning on their time
 * column, UTC days), so that retention drops whole partitions instead of deleting rows one by one:
 *
 * | table             | partition key |
 * |-------------------|---------------|
 * | `events`          | `ts`          |
 * | `detections`      | `ts`          |
 * | `series_minutes`  | `minute`      |
 * | `series_partials` | `minute`      |
 *
 * A primary key or unique index of a partitioned table must contain the partition key, so each one
 * gets the time column appended: `events (tenant_id, id, ts)` — a retried event carries the same
 * id and the same timestamp, so ingest stays idempotent — and `detections (tenant_id, event_id, ts)`.
 * Each table also gets a `<table>_default` partition for rows outside every day partition (old
 * backfills, far-future timestamps): an insert never fails for want of a partition.
 *
 * The conversion is generic: it runs after every other migration and takes the table as it finds
 * it (`LIKE` copies whatever columns, defaults and checks exist; every index is rebuilt from its
 * own definition, unique ones with the partition key appended). Existing rows are copied, so on a
 * large database this migration takes as long as copying the tables (see docs/operations.md).
 *
 * `ad_create_day_partition(parent, day)` creates one day's partition (moving the rows the default
 * partition holds for that day into it, then attaching it: attaching takes a lighter lock on the
 * parent than `CREATE TABLE … PARTITION OF`); the partition job calls it ahead of time.
 */
export class PartitionByDay1764300600000 implements MigrationInterface {
  name = 'PartitionByDay1764300600000';

  static readonly TABLES: readonly { table: string; key: string }[] = [
    { table: 'events', key: 'ts' },
    { table: 'detections', key: 'ts' },
    { table: 'series_minutes', key: 'minute' },
    { table: 'series_partials', key: 'minute' },
  ];

  async up(q: QueryRunner): Promise<void> {
    await q.query(CREATE_PARTITION_FUNCTION);
    for (const { table, key } of PartitionByDay1764300600000.TABLES) await convert(q, table, key);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const { table, key } of PartitionByDay1764300600000.TABLES) await unconvert(q, table, key);
    await q.query(`DROP FUNCTION ad_create_day_partition(regclass, date)`);
  }
}

const CREATE_PARTITION_FUNCTION = `
CREATE OR REPLACE FUNCTION ad_create_day_partition(parent regclass, day date) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  base text := (SELECT relname FROM pg_class WHERE oid = parent);
  part text := base || '_p' || to_char(day, 'YYYYMMDD');
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
  keycol text;
BEGIN
  -- One creator at a time per table (replicas run the job concurrently).
  PERFORM pg_advisory_xact_lock(hashtext('ad_partition:' || base));
  IF to_regclass(quote_ident(part)) IS NOT NULL THEN RETURN false; END IF;
  SELECT a.attname INTO keycol FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
   WHERE p.partrelid = parent;
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', part, base);
  IF to_regclass(quote_ident(base || '_default')) IS NOT NULL THEN
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                   base || '_default', keycol, keycol, part) USING lo, hi;
  END IF;
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', base, part, lo, hi);
  RETURN true;
END
$fn$`;

interface IndexDef {
  name: string;
  def: string;
  unique: boolean;
  constraint: string | null;
  constraintType: string | null;
}

async function indexesOf(q: QueryRunner, table: string): Promise<IndexDef[]> {
  const rows: { name: string; def: string; unique: boolean; constraint: string | null; contype: string | null }[] = await q.query(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisunique AS unique,
            con.conname AS constraint, con.contype::text AS contype
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = $1::regclass ORDER BY c.relname`,
    [table],
  );
  return rows.map((r) => ({ name: r.name, def: r.def, unique: r.unique, constraint: r.constraint, constraintType: r.contype }));
}

/** `(a, b)` of `… USING btree (a, b) …`, with its position. */
function columnList(def: string): { start: number; end: number; text: string } {
  const open = def.indexOf('(', def.indexOf(' USING '));
  let depth = 0;
  for (let i = open; i < def.length; i++) {
    if (def[i] === '(') depth++;
    else if (def[i] === ')' && --depth === 0) return { start: open, end: i, text: def.slice(open + 1, i) };
  }
  throw new Error(`cannot read the columns of index definition: ${def}`);
}

/** The index definition for the partitioned table: same name and columns, the partition key appended to unique ones. */
function partitionedIndexDef(def: string, table: string, from: string, key: string, unique: boolean): string {
  let out = def.replace(new RegExp(` ON (ONLY )?(public\\.)?"?(${table}|${from})"? `), ` ON ${table} `);
  if (unique) {
    const cols = columnList(out);
    const names = cols.text.split(',').map((c) => c.trim().split(' ')[0].replace(/"/g, ''));
    if (!names.includes(key)) out = `${out.slice(0, cols.end)}, ${key}${out.slice(cols.end)}`;
  }
  return out;
}

async function convert(q: QueryRunner, table: string, key: string): Promise<void> {
  const [{ partitioned }] = await q.query(`SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = $1::regclass`, [table]);
  if (partitioned) return;
  const referencing: { conname: string; src: string }[] = await q.query(
    `SELECT conname, conrelid::regclass::text AS src FROM pg_constraint WHERE confrelid = $1::regclass AND contype = 'f'`,
    [table],
  );
  if (referencing.length) {
    // A foreign key into a partitioned table must name a unique key holding the partition key: it has to be rewritten by hand.
    throw new Error(`${table} is referenced by foreign keys (${referencing.map((r) => `${r.src}.${r.conname}`).join(', ')}): include ${key} in them first`);
  }
  const outgoing: { conname: string; def: string }[] = await q.query(
    `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`,
    [table],
  );
  const indexes = await indexesOf(q, table);
  const old = `${table}_unpartitioned`;
  await q.query(`ALTER TABLE ${table} RENAME TO ${old}`);
  await q.query(
    `CREATE TABLE ${table} (LIKE ${old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)
     PARTITION BY RANGE (${key})`,
  );
  await q.query(`CREATE TABLE ${table}_default PARTITION OF ${table} DEFAULT`);
  // One partition per day of the stored rows of the last 400 days (older rows stay in the default
  // partition until retention removes them), and from yesterday to three days ahead.
  await q.query(
    `SELECT ad_create_day_partition($1::regclass, d::date)
       FROM (SELECT DISTINCT (${key} AT TIME ZONE 'UTC')::date AS d FROM ${old} WHERE ${key} >= now() - interval '400 days'
              UNION SELECT (now() AT TIME ZONE 'UTC')::date + k FROM generate_series(-1, 3) AS k) days
      ORDER BY d`,
    [table],
  );
  await q.query(`INSERT INTO ${table} SELECT * FROM ${old}`);
  await q.query(`DROP TABLE ${old}`);
  // Indexes after the copy (faster than maintaining them row by row), with their old names.
  for (const ix of indexes) {
    const def = partitionedIndexDef(ix.def, table, old, key, ix.unique);
    if (ix.constraintType === 'p' || ix.constraintType === 'u') {
      const cols = columnList(def).text;
      await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${ix.constraint} ${ix.constraintType === 'p' ? 'PRIMARY KEY' : 'UNIQUE'} (${cols})`);
    } else {
      await q.query(def);
    }
  }
  for (const fk of outgoing) await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${fk.conname} ${fk.def}`);
}

/** Back to one plain table: the rows are copied, unique keys lose the partition key again where it was appended. */
async function unconvert(q: QueryRunner, table: string, key: string): Promise<void> {
  const [{ partitioned }] = await q.query(`SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = $1::regclass`, [table]);
  if (!partitioned) return;
  const indexes = await indexesOf(q, table);
  const old = `${table}_partitioned`;
  await q.query(`ALTER TABLE ${table} RENAME TO ${old}`);
  await q.query(`CREATE TABLE ${table} (LIKE ${old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)`);
  await q.query(`INSERT INTO ${table} SELECT * FROM ${old}`);
  await q.query(`DROP TABLE ${old}`);
  const original: Record<string, string[]> = {
    events_pkey: ['tenant_id', 'id'],
    detections_pkey: ['tenant_id', 'id'],
    detections_tenant_event_idx: ['tenant_id', 'event_id'],
  };
  for (const ix of indexes) {
    let def = ix.def.replace(new RegExp(` ON (ONLY )?(public\\.)?"?(${table}|${old})"? `), ` ON ${table} `);
    const cols = columnList(def);
    if (original[ix.name]) def = `${def.slice(0, cols.start + 1)}${original[ix.name].join(', ')}${def.slice(cols.end)}`;
    if (ix.constraintType === 'p' || ix.constraintType === 'u') {
      await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${ix.constraint} ${ix.constraintType === 'p' ? 'PRIMARY KEY' : 'UNIQUE'} (${columnList(def).text})`);
    } else {
      await q.query(def);
    }
  }
  void key;
}
