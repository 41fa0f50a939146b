/**
 * Ingest benchmark: the running service on real PostgreSQL against a plain multi-row INSERT of the
 * same rows into the same table, measured in one run (this machine is shared and noisy: only the
 * ratio means much).
 *
 *   npm run bench -- ingest [--database-url URL] [--events 100000] [--batch 1000] [--concurrency 4]
 *                           [--rounds 2] [--rate 200] [--seconds 15] [--compare-insert] [--replicas 1]
 *
 * It creates a fresh database on the server of --database-url (default: the local PostgreSQL),
 * trains a model for the bench tenant with `generate-data` + `train`, starts `dist/src/main.js` on a
 * free port, then alternates: POST /ingest in batches (validated, scored, stored, acknowledged)
 * and the baseline (pg, multi-row INSERT ... VALUES of the same event rows, same durability: no
 * COPY, synchronous_commit on). Finally single-event POSTs at a fixed rate, open loop, for latency.
 * With --compare-insert, a second service on the same database with COPY off
 * (INGEST_COPY_MIN_EVENTS=0) takes each round too, right after the first: what COPY changes, same run.
 * With --replicas N, N processes of the service share the database and the requests go to them
 * round-robin (one Node.js process uses one core; the baseline's 4 connections are 4 processes).
 * Besides the rates it reports the CPU each side costs per event (the service's process, worker
 * threads included, and the PostgreSQL backends of the bench database, from /proc), which moves much
 * less with the machine's other load than the rates do, and for the single events the service's CPU
 * per request and its event-loop delay (from its /prom).
 */
import { randomBytes } from 'crypto';
import { cpus, loadavg, totalmem } from 'os';
import { parseArgs } from 'util';
import { Pool } from 'pg';
import { benchEvents, eventLoopDelay, freshDatabase, ingestBodies, ingestRound, KEY, median, pct, pool, processCpuMs, startService } from './bench-service';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      events: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '2' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '15' },
      warmup: { type: 'string', default: '3' },
      'cpu-prof': { type: 'string' },
      'compare-insert': { type: 'boolean', default: false },
      replicas: { type: 'string', default: '1' },
    },
  });
  const total = Number(values.events);
  const batch = Number(values.batch);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);

  const dbUrl = await freshDatabase(values['database-url']!);
  const load0 = loadavg();
  const service = await startService(dbUrl, { cpuProfileDir: values['cpu-prof'] });
  // More replicas of the same service on the same database (stateless: requests go round-robin).
  const replicas = [service];
  for (let r = 1; r < Number(values.replicas); r++) replicas.push(await startService(dbUrl, { train: false }));
  const bases = replicas.map((s) => s.base);
  // The same service with COPY off (INSERT … ON CONFLICT for every write), on the same database.
  const insertOnly = values['compare-insert'] ? await startService(dbUrl, { train: false, env: { INGEST_COPY_MIN_EVENTS: '0' } }) : undefined;
  try {
    // The same events for both sides; each round uses fresh ids so nothing is deduplicated away.
    const events = benchEvents(total);
    const pg = new Pool({ connectionString: dbUrl, max: concurrency });

    const ours: number[] = [];
    // The service's CPU per event in each of our rounds (µs, all replicas): what the code costs,
    // much less sensitive to the machine's other load than the rates.
    const cpuPerEvent: number[] = [];
    const serviceCpu = () => replicas.reduce((sum, r) => sum + (processCpuMs(r.pid) ?? NaN), 0);
    const oursInsert: number[] = [];
    const baseline: number[] = [];
    // PostgreSQL's CPU per event (µs, the backends connected to the bench database) for each side.
    const dbPerEvent: { ours: number[]; baseline: number[] } = { ours: [], baseline: [] };
    const dbName = new URL(dbUrl).pathname.slice(1);
    const backends = async () => {
      const { rows } = await pg.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
      return new Map(rows.map((r) => [r.pid, processCpuMs(r.pid) ?? 0]));
    };
    /** CPU the database's backends used since `before` (backends new since then count from zero). */
    const dbCpuSince = async (before: Map<number, number>) => {
      let ms = 0;
      for (const [pid, cpu] of await backends()) ms += cpu - (before.get(pid) ?? 0);
      return ms;
    };
    for (let round = 0; round < rounds; round++) {
      const prefix = `r${round}-${randomBytes(3).toString('hex')}`;
      const bodies = ingestBodies(events, batch, prefix);
      const cpu0 = serviceCpu();
      let db0 = await backends();
      ours.push(await ingestRound(bases, bodies, events.length, concurrency));
      cpuPerEvent.push(((serviceCpu() - cpu0) * 1000) / events.length);
      dbPerEvent.ours.push(((await dbCpuSince(db0)) * 1000) / events.length);
      if (insertOnly) oursInsert.push(await ingestRound(insertOnly.base, ingestBodies(events, batch, `${prefix}-i`), events.length, concurrency));

      // Baseline: the same rows (ids, columns, JSON metadata) straight into `events`.
      const statements: { sql: string; params: unknown[] }[] = [];
      for (let i = 0; i < events.length; i += batch) {
        const slice = events.slice(i, i + batch);
        const params: unknown[] = [];
        const tuples = slice.map((e, k) => {
          const { timestamp, service, http, performance, tenant: _t, ...rest } = e;
          void _t;
          params.push(
            'baseline',
            `${prefix}-b-${i + k}`,
            service,
            timestamp,
            'api',
            performance.duration_ms,
            http.response.status_code,
            http.response.bytes,
            JSON.stringify({ http, performance, ...rest }),
            0.1,
            1,
            1,
          );
          const o = k * 12;
          return `($${o + 1},$${o + 2},$${o + 3},$${o + 4},$${o + 5},$${o + 6},$${o + 7},$${o + 8},$${o + 9},$${o + 10},$${o + 11},$${o + 12})`;
        });
        statements.push({
          sql: `INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version) VALUES ${tuples.join(',')}`,
          params,
        });
      }
      db0 = await backends();
      const t0 = process.hrtime.bigint();
      await pool(
        statements.map((s) => async () => {
          await pg.query(s.sql, s.params);
        }),
        concurrency,
      );
      baseline.push(events.length / (Number(process.hrtime.bigint() - t0) / 1e9));
      dbPerEvent.baseline.push(((await dbCpuSince(db0)) * 1000) / events.length);
      const insertNote = insertOnly ? `, ours with COPY off ${oursInsert[round].toFixed(0)} ev/s` : '';
      process.stderr.write(
        `round ${round + 1}: ours ${ours[round].toFixed(0)} ev/s (service CPU ${cpuPerEvent[round].toFixed(1)} µs/event, PostgreSQL ${dbPerEvent.ours[round].toFixed(1)})${insertNote}, ` +
          `baseline ${baseline[round].toFixed(0)} ev/s (PostgreSQL ${dbPerEvent.baseline[round].toFixed(1)} µs/event)\n`,
      );
    }
    await pg.end();
    await insertOnly?.stop();

    // Single events at a fixed rate, open loop: a slow answer does not slow the sender. The first
    // `warmup` seconds are sent but not recorded: steady state, not first-request costs (model
    // loading, new database connections, JIT).
    const latencies: number[] = [];
    const skip = rate * warmup;
    const n = rate * (seconds + warmup);
    const start = performance.now();
    let singleCpu0 = NaN;
    const inflight: Promise<void>[] = [];
    let errors = 0;
    for (let i = 0; i < n; i++) {
      if (i === skip) {
        singleCpu0 = serviceCpu();
        void eventLoopDelay(bases[0]); // resets the service's event-loop delay histogram
      }
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Live traffic: stamped now, as a service pushing its requests would.
      const body = JSON.stringify({ ...events[i % events.length], timestamp: new Date().toISOString(), tenant: undefined, id: `lat-${i}-${randomBytes(3).toString('hex')}` });
      const t = performance.now();
      inflight.push(
        fetch(`${bases[i % bases.length]}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body }).then(
          async (res) => {
            await res.arrayBuffer();
            if (res.status !== 200) errors++;
            const ms = performance.now() - t;
            if (i >= skip) latencies.push(ms);
            if (process.env.BENCH_SLOW_MS && ms > Number(process.env.BENCH_SLOW_MS)) {
              process.stderr.write(`slow: request ${i} sent at +${((t - start) / 1000).toFixed(2)} s took ${ms.toFixed(1)} ms\n`);
            }
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await Promise.all(inflight);
    const singleCpuMs = (serviceCpu() - singleCpu0) / (n - skip);
    const loopDelay = await eventLoopDelay(bases[0]);
    latencies.sort((a, b) => a - b);

    const result = {
      events: events.length,
      replicas: replicas.length,
      batch,
      concurrency,
      rounds,
      ingest_events_per_s: rounds ? Math.round(median(ours)) : null,
      baseline_insert_events_per_s: rounds ? Math.round(median(baseline)) : null,
      ratio: rounds ? Math.round((median(ours) / median(baseline)) * 1000) / 1000 : null,
      ratios_per_round: ours.map((o, i) => Math.round((o / baseline[i]) * 1000) / 1000),
      service_cpu_us_per_event: rounds ? Math.round(median(cpuPerEvent) * 10) / 10 : null,
      db_cpu_us_per_event: rounds ? { ours: Math.round(median(dbPerEvent.ours) * 10) / 10, baseline: Math.round(median(dbPerEvent.baseline) * 10) / 10 } : null,
      ...(insertOnly
        ? {
            copy_off_events_per_s: Math.round(median(oursInsert)),
            copy_off_ratio: Math.round((median(oursInsert) / median(baseline)) * 1000) / 1000,
            copy_off_ratios_per_round: oursInsert.map((o, i) => Math.round((o / baseline[i]) * 1000) / 1000),
          }
        : {}),
      single_event_rate_per_s: rate,
      single_event_seconds: seconds,
      single_event_warmup_seconds: warmup,
      single_event_p50_ms: Math.round(pct(latencies, 0.5) * 100) / 100,
      single_event_p99_ms: Math.round(pct(latencies, 0.99) * 100) / 100,
      single_event_errors: errors,
      single_event_service_cpu_ms: Math.round(singleCpuMs * 1000) / 1000,
      // The first replica's event-loop delay while the single events were recorded (prom-client, 10 ms resolution).
      single_event_loop_delay_ms: loopDelay && { p99: Math.round(loopDelay.p99 * 10) / 10, max: Math.round(loopDelay.max * 10) / 10 },
    };
    process.stdout.write(`machine: ${cpus()[0]?.model} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
    process.stdout.write(`load average: ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end\n`);
    process.stdout.write(`database: ${new URL(dbUrl).host}\n`);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await insertOnly?.stop();
    for (const r of replicas) await r.stop();
  }
}
