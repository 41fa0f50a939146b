/**
 * Partition benchmark: batch ingest rate with many rows stored against an empty `events` table,
 * and retention of one day's partition, in one run on one database.
 *
 *   npm run bench -- partitions [--database-url URL] [--rows 20000000] [--events 50000] [--rounds 5]
 *                               [--batch 1000] [--concurrency 4] [--delete-sample 1000000] [--keep-db]
 *
 * 1. A fresh database; the service started on it (migrations, a trained model for the bench tenant).
 * 2. `--rows` rows of the bench tenant are generated in SQL, half into today's day and half into
 *    the day before yesterday (each built as a plain table, then attached as that day's partition,
 *    which builds its indexes). Ids are random, so new keys land all over the stored ones' indexes.
 * 3. Rounds alternate "stored" (both filled days attached: `--rows` rows in `events`, today's
 *    partition holding half of them) and "empty" (both detached, an empty partition attached for
 *    today): each round posts `--events` events stamped today through `POST /ingest` in batches,
 *    after one unrecorded warm-up round in each state; the order of the two states alternates.
 *    Swapping partitions takes milliseconds (each filled table carries a CHECK constraint matching
 *    its day, so attaching needs no scan), which is what lets the two states alternate in one run.
 * 4. Retention: the day before yesterday's partition (`--rows`/2 rows) is dropped by the service's
 *    own retention code (`PartitionRepository.dropDayPartitionsBefore`), timed, while one-row
 *    inserts run back to back (the longest of them: how long retention held ingest up); for reference, a
 *    `DELETE` of `--delete-sample` rows from today's partition (what retention did before), timed.
 *
 * Prints the machine, the per-round rates and one JSON line.
 */
import { randomBytes } from 'crypto';
import { cpus, loadavg, totalmem } from 'os';
import { parseArgs } from 'util';
import { Client } from 'pg';
import { AppConfig } from '../src/config/app-config';
import { Database } from '../src/modules/store/database/database';
import { PartitionRepository } from '../src/modules/store/partition.repository';
import { benchEvents, dropDatabase, freshDatabase, ingestBodies, ingestRound, median, startService, TENANT } from './bench-service';

const DAY = 86_400_000;
const ymd = (t: number) => new Date(t - (t % DAY)).toISOString().slice(0, 10);

const log = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const out = await fn();
  return [out, Number(process.hrtime.bigint() - t0) / 1e6];
}

/** Fills `table` (a copy of `events`' columns) with `rows` rows of the bench tenant spread over the UTC day `day`. */
async function fill(c: Client, table: string, day: string, rows: number): Promise<void> {
  await c.query(`CREATE TABLE ${table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
  const chunk = 1_000_000;
  for (let from = 0; from < rows; from += chunk) {
    const n = Math.min(chunk, rows - from);
    await c.query(
      `INSERT INTO ${table} (tenant_id, id, service, ts, received_at, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version, shipped_at)
       SELECT $1, md5($4 || i::text), 'svc-' || (i % 8), t, t, 'api', d, s, 2000 + (i % 7000),
              jsonb_build_object('http', jsonb_build_object('request', jsonb_build_object('method', 'GET', 'path', '/api/items/' || (i % 500)),
                                                            'response', jsonb_build_object('status_code', s, 'bytes', 2000 + (i % 7000))),
                                 'performance', jsonb_build_object('duration_ms', d), 'seo_context', jsonb_build_object('strategy', 'S' || (i % 5))),
              0.1, 1, 1, t
         FROM (SELECT i, $2::timestamptz + (i::float8 / $3) * interval '1 day' AS t, 20 + (i % 977) * 0.5 AS d,
                      CASE WHEN i % 97 = 0 THEN 503 ELSE 200 END AS s
                 FROM generate_series($5::bigint, $6::bigint) AS i) g`,
      [TENANT, `${day}T00:00:00Z`, rows, table, from, from + n - 1],
    );
    log(`${table}: ${from + n} / ${rows} rows`);
  }
  const lo = `${day}T00:00:00Z`;
  const hi = new Date(Date.parse(lo) + DAY).toISOString();
  await c.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_day CHECK (ts >= '${lo}' AND ts < '${hi}')`);
  await c.query(`ANALYZE ${table}`);
}

const bounds = (day: string) => `FOR VALUES FROM ('${day}T00:00:00Z') TO ('${new Date(Date.parse(`${day}T00:00:00Z`) + DAY).toISOString()}')`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      rows: { type: 'string', default: '20000000' },
      events: { type: 'string', default: '50000' },
      rounds: { type: 'string', default: '5' },
      batch: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      'delete-sample': { type: 'string', default: '1000000' },
      'keep-db': { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const total = Number(values.events);
  const rounds = Number(values.rounds);
  const batch = Number(values.batch);
  const concurrency = Number(values.concurrency);
  const deleteSample = Number(values['delete-sample']);

  const dbUrl = await freshDatabase(values['database-url']!);
  const load0 = loadavg();
  const service = await startService(dbUrl);
  const c = new Client({ connectionString: dbUrl });
  await c.connect();
  const database = await Database.open(AppConfig.from({ databaseUrl: dbUrl }), { migrate: false });
  try {
    const now = Date.now();
    const today = ymd(now);
    const old = ymd(now - 2 * DAY);
    await c.query(`SET maintenance_work_mem = '256MB'`);

    // Today's empty partition (made by the migration) and the two filled days as plain tables.
    const empty = `events_p${today.replace(/-/g, '')}`;
    // The old day's table takes the partition name, so that retention finds it as the job would.
    const [filled, filledOld] = ['bench_fill_today', `events_p${old.replace(/-/g, '')}`];
    const [, fillMs] = await timed(async () => {
      await fill(c, filled, today, Math.ceil(rows / 2));
      await fill(c, 'bench_fill_old', old, Math.floor(rows / 2));
    });
    log(`filled ${rows} rows in ${(fillMs / 1000).toFixed(0)} s`);
    await c.query(`ALTER TABLE events DETACH PARTITION ${empty}`);
    await c.query(`ALTER TABLE ${empty} ADD CONSTRAINT ${empty}_day CHECK (ts >= '${today}T00:00:00Z' AND ts < '${new Date(Date.parse(`${today}T00:00:00Z`) + DAY).toISOString()}')`);
    await c.query(`DROP TABLE IF EXISTS ${filledOld}`);
    await c.query(`ALTER TABLE bench_fill_old RENAME TO ${filledOld}`);
    // First attach builds the filled tables' indexes (as the partitioned table's).
    const [, indexMs] = await timed(async () => {
      await c.query(`ALTER TABLE events ATTACH PARTITION ${filled} ${bounds(today)}`);
      await c.query(`ALTER TABLE events ATTACH PARTITION ${filledOld} ${bounds(old)}`);
    });
    log(`indexes built in ${(indexMs / 1000).toFixed(0)} s`);

    let state: 'stored' | 'empty' = 'stored';
    const setState = async (want: 'stored' | 'empty') => {
      if (state === want) return;
      if (want === 'empty') {
        await c.query(`ALTER TABLE events DETACH PARTITION ${filled}`);
        await c.query(`ALTER TABLE events DETACH PARTITION ${filledOld}`);
        await c.query(`ALTER TABLE events ATTACH PARTITION ${empty} ${bounds(today)}`);
      } else {
        await c.query(`ALTER TABLE events DETACH PARTITION ${empty}`);
        await c.query(`ALTER TABLE events ATTACH PARTITION ${filled} ${bounds(today)}`);
        await c.query(`ALTER TABLE events ATTACH PARTITION ${filledOld} ${bounds(old)}`);
      }
      state = want;
      const [{ n }] = (await c.query(`SELECT COUNT(*)::bigint AS n FROM events`)).rows;
      log(`state ${want}: ${n} rows in events`);
    };

    // Events stamped today (spread over the last minutes), so they land in today's partition.
    const events = benchEvents(total);
    const stamp = (i: number) => new Date(now - 600_000 + Math.floor((i * 600_000) / total)).toISOString();
    const rates: Record<'stored' | 'empty', number[]> = { stored: [], empty: [] };
    // Warm-up, not recorded: one round in each state (JIT, connections, caches).
    for (const s of ['empty', 'stored'] as const) {
      await setState(s);
      await ingestRound(service.base, ingestBodies(events, batch, `warm-${s}`, stamp), events.length, concurrency);
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of round % 2 ? (['empty', 'stored'] as const) : (['stored', 'empty'] as const)) {
        await setState(s);
        await c.query(`CHECKPOINT`); // neither state pays for the other's dirty pages
        const prefix = `${s}${round}-${randomBytes(3).toString('hex')}`;
        const rate = await ingestRound(service.base, ingestBodies(events, batch, prefix, stamp), events.length, concurrency);
        rates[s].push(rate);
        log(`round ${round + 1} ${s}: ${rate.toFixed(0)} ev/s`);
      }
    }

    // Retention: drop the filled old day (stored state), as the service's job does.
    await setState('stored');
    const partitions = new PartitionRepository(database.dataSource);
    const [{ n: oldRows }] = (await c.query(`SELECT COUNT(*)::bigint AS n FROM ${filledOld}`)).rows;
    // Meanwhile, one-row inserts into today's partition, one after another: the longest is how long
    // retention held ingest up.
    let retaining = true;
    const stalls: number[] = [];
    const writer = new Client({ connectionString: dbUrl });
    await writer.connect();
    const inserting = (async () => {
      for (let i = 0; retaining; i++) {
        const [, ms] = await timed(() =>
          writer.query(`INSERT INTO events (tenant_id, id, service, ts, source, metadata, score, prediction) VALUES ($1, $2, 'svc-0', now(), 'api', '{}', 0.1, 1)`, [
            TENANT,
            `stall-${i}`,
          ]),
        );
        stalls.push(ms);
      }
    })();
    const [dropped, dropMs] = await timed(() => partitions.dropDayPartitionsBefore('events', new Date(Date.parse(`${old}T00:00:00Z`) + DAY)));
    retaining = false;
    await inserting;
    await writer.end();
    if (!dropped.includes(filledOld)) throw new Error(`retention did not drop ${filledOld} (dropped: ${dropped.join(', ')})`);
    // Reference: the old way, row by row, on a sample of today's rows.
    const [{ rowCount: deleted }, deleteMs] = await timed(() =>
      c.query(`DELETE FROM events WHERE tenant_id = $1 AND ts >= $2 AND ts < $2::timestamptz + ($3::float8 / $4) * interval '1 day'`, [
        TENANT,
        `${today}T00:00:00Z`,
        deleteSample,
        Math.ceil(rows / 2),
      ]),
    );

    const ratio = median(rates.stored) / median(rates.empty);
    process.stdout.write(`machine: ${cpus()[0]?.model} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
    process.stdout.write(`load average: ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end\n`);
    process.stdout.write(`database: ${new URL(dbUrl).host}, ${(await c.query('SHOW server_version')).rows[0].server_version}\n`);
    process.stdout.write(
      JSON.stringify({
        rows_stored: rows,
        events_per_round: events.length,
        rounds,
        batch,
        concurrency,
        ingest_stored_events_per_s: Math.round(median(rates.stored)),
        ingest_empty_events_per_s: Math.round(median(rates.empty)),
        stored_over_empty: Math.round(ratio * 1000) / 1000,
        rates_stored: rates.stored.map(Math.round),
        rates_empty: rates.empty.map(Math.round),
        retention_partition_rows: Number(oldRows),
        retention_drop_ms: Math.round(dropMs * 10) / 10,
        retention_longest_insert_ms: Math.round(Math.max(...stalls) * 10) / 10,
        retention_inserts_meanwhile: stalls.length,
        delete_reference_rows: deleted,
        delete_reference_ms: Math.round(deleteMs),
        delete_extrapolated_to_partition_s: deleted ? Math.round((deleteMs * Number(oldRows)) / deleted / 100) / 10 : null,
        fill_s: Math.round(fillMs / 1000),
        index_build_s: Math.round(indexMs / 1000),
      }) + '\n',
    );
  } finally {
    await database.close();
    await c.end();
    await service.stop();
    // Its 20 M rows take ≈ 6 GB: dropped at the end unless --keep-db.
    if (!values['keep-db']) await dropDatabase(dbUrl);
  }
}
