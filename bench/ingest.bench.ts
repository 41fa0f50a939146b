/**
 * Ingest benchmark: the running service on real PostgreSQL against a plain multi-row INSERT of the
 * same rows into the same table, measured in one run (this machine is shared and noisy: only the
 * ratio means much).
 *
 *   npm run bench -- ingest [--database-url URL] [--events 100000] [--batch 1000] [--concurrency 4]
 *                           [--rounds 2] [--warmup-rounds 1] [--rate 200] [--seconds 60] [--warmup 3] [--settle-seconds 300]
 *                           [--compare-insert] [--replicas 1] [--no-single-baseline] [--slices 4] [--no-loki] [--keep-db]
 *
 * It creates a fresh database on the server of --database-url (default: the local PostgreSQL),
 * trains a model for the bench tenant with `generate-data` + `train`, starts `dist/src/main.js` on a
 * free port (shipping every event to a Loki sink in a process of its own, bench/loki-sink.ts, as
 * with LOKI_PUSH_URL set in production; --no-loki runs without shipping), then alternates (after --warmup-rounds unrecorded rounds of both): POST /ingest in
 * batches (validated, scored, stored, acknowledged)
 * and the baseline (pg, multi-row INSERT ... VALUES of the same event rows, same durability: no
 * COPY, synchronous_commit on). Each round's two sides are cut into --slices parts that take
 * turns ABBA (ours, baseline, baseline, ours, …), so that a minute of disk stalls weighs on both;
 * --slices 1 runs each side's round whole, one after the other (the bench before 2026-12-01). Finally single-event POSTs at a fixed rate, open loop, for latency:
 * for 15 s right after the rounds (reported as `after_batch_*`), then, once the rounds' backlog is
 * worked off (series closed up to the watermark, no incident backlog, no autovacuum; at most
 * --settle-seconds), for --seconds of steady traffic while the periodic jobs run (`single_event_*`,
 * with the job runs seen in that time), taking turns of 10 s with as many seconds of the
 * single-event baseline, plain one-row INSERT commits of the same events at the same rate
 * (`single_event_baseline_*`; --no-single-baseline leaves it out), and for each side the seconds in
 * which a commit was seen waiting for the disk (`single_event_wal_wait_seconds`). The fresh database is dropped at the end unless --keep-db.
 * With --compare-insert, a second service on the same database with COPY off
 * (INGEST_COPY_MIN_EVENTS=0) takes each round too, right after the first: what COPY changes, same run.
 * With --replicas N, N processes of the service share the database and the requests go to them
 * round-robin (one Node.js process uses one core; the baseline's 4 connections are 4 processes).
 * Besides the rates it reports the CPU each side costs per event (the service's process, worker
 * threads included, and the PostgreSQL backends of the bench database, from /proc), which moves much
 * less with the machine's other load than the rates do, and for the single events the service's CPU
 * per request and its event-loop delay (from its /prom). With --cpu-prof DIR the (first) service
 * writes a V8 CPU profile there when it stops, sampled every BENCH_CPU_PROF_INTERVAL µs (default
 * 1000); BENCH_SLOW_MS=N prints each single event slower than N ms with its send time, and the
 * monotonic clock (µs) at the start of each open loop, the clock a CPU profile's timestamps use.
 */
import { randomBytes } from 'crypto';
import { Agent, request } from 'http';
import { cpus, loadavg, totalmem } from 'os';
import { monitorEventLoopDelay } from 'perf_hooks';
import { parseArgs } from 'util';
import { Pool } from 'pg';
import { SCHEDULER_JOBS } from '../src/modules/jobs/jobs.metrics';
import { startLokiSink } from './loki-sink';
import { benchEvents, TENANT, dropDatabase, eventLoopDelay, freshDatabase, ingestBodies, ingestRound, KEY, median, pct, pool, processCpuMs, promCounter, startService } from './bench-service';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      events: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '2' },
      'warmup-rounds': { type: 'string', default: '1' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '3' },
      'settle-seconds': { type: 'string', default: '300' },
      'keep-db': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'compare-insert': { type: 'boolean', default: false },
      replicas: { type: 'string', default: '1' },
      'no-single-baseline': { type: 'boolean', default: false },
      slices: { type: 'string', default: '4' },
      'no-loki': { type: 'boolean', default: false },
    },
  });
  const total = Number(values.events);
  const batch = Number(values.batch);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const warmupRounds = rounds > 0 ? Number(values['warmup-rounds']) : 0;
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const slices = Math.max(1, Math.floor(Number(values.slices)));

  const dbUrl = await freshDatabase(values['database-url']!);
  const load0 = loadavg();
  // Shipping on, as in production with Loki configured: every stored event is pushed on by the
  // service's shipper (and marked shipped in the database), into a sink that drops it.
  const loki = values['no-loki'] ? undefined : await startLokiSink();
  const lokiEnv: Record<string, string> = loki ? { LOKI_PUSH_URL: loki.pushUrl } : {};
  const service = await startService(dbUrl, { cpuProfileDir: values['cpu-prof'], env: lokiEnv });
  // More replicas of the same service on the same database (stateless: requests go round-robin).
  const replicas = [service];
  for (let r = 1; r < Number(values.replicas); r++) replicas.push(await startService(dbUrl, { train: false, env: lokiEnv }));
  const bases = replicas.map((s) => s.base);
  // The same service with COPY off (INSERT … ON CONFLICT for every write), on the same database.
  const insertOnly = values['compare-insert'] ? await startService(dbUrl, { train: false, env: { ...lokiEnv, INGEST_COPY_MIN_EVENTS: '0' } }) : undefined;
  try {
    // The same events for both sides; each round uses fresh ids so nothing is deduplicated away.
    const events = benchEvents(total);
    const pg = new Pool({ connectionString: dbUrl, max: concurrency });
    // An idle connection cut by the server (the database dropped at the end after a failure) must
    // not crash the bench with an unhandled 'error' event and hide the failure itself.
    pg.on('error', () => undefined);

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
    // Warm-up rounds first, on both sides, printed but not in the figures: the service's first
    // batches run unoptimised code (V8 compiles the scoring kernels and the COPY path on the way)
    // and open its connections; the partition bench does the same.
    for (let round = 0; round < warmupRounds + rounds; round++) {
      const label = round < warmupRounds ? `warm-up ${round + 1}` : `round ${round - warmupRounds + 1}`;
      const prefix = `r${round}-${randomBytes(3).toString('hex')}`;
      const bodies = ingestBodies(events, batch, prefix);
      const copyOffBodies = insertOnly ? ingestBodies(events, batch, `${prefix}-i`) : [];
      // Baseline: the same rows (ids, columns, JSON metadata) straight into `events`.
      const statements = baselineStatements(events, batch, prefix);
      // Each side's round is cut into --slices consecutive parts that take turns, ABBA (ours, baseline,
      // baseline, ours, …): a stall of the disk (WAL flushes here wait 100–600 ms several times a
      // minute) or of the machine then falls on both sides' time, not on one side's whole round.
      const sides = { ours: { seconds: 0, cpuMs: 0, dbMs: 0 }, copyOff: { seconds: 0, cpuMs: 0, dbMs: 0 }, baseline: { seconds: 0, cpuMs: 0, dbMs: 0 } };
      const part = <T>(xs: T[], k: number) => xs.slice(Math.round((k * xs.length) / slices), Math.round(((k + 1) * xs.length) / slices));
      // (Each part is timed here, summed per side: ingestRound's own rate is not used.)
      const timed = async (side: keyof typeof sides, send: () => Promise<unknown>) => {
        const cpu0 = serviceCpu();
        const db0 = await backends();
        const t0 = process.hrtime.bigint();
        await send();
        sides[side].seconds += Number(process.hrtime.bigint() - t0) / 1e9;
        sides[side].cpuMs += serviceCpu() - cpu0;
        sides[side].dbMs += await dbCpuSince(db0);
      };
      for (let k = 0; k < slices; k++) {
        const runOurs = async () => {
          await timed('ours', () => ingestRound(bases, part(bodies, k), events.length, concurrency));
          if (insertOnly) await timed('copyOff', () => ingestRound(insertOnly.base, part(copyOffBodies, k), events.length, concurrency));
        };
        const runBaseline = () =>
          timed('baseline', () =>
            pool(
              part(statements, k).map((st) => async () => {
                await pg.query(st.sql, st.params);
              }),
              concurrency,
            ),
          );
        if (k % 2 === 0) {
          await runOurs();
          await runBaseline();
        } else {
          await runBaseline();
          await runOurs();
        }
      }
      ours.push(events.length / sides.ours.seconds);
      cpuPerEvent.push((sides.ours.cpuMs * 1000) / events.length);
      dbPerEvent.ours.push((sides.ours.dbMs * 1000) / events.length);
      if (insertOnly) oursInsert.push(events.length / sides.copyOff.seconds);
      baseline.push(events.length / sides.baseline.seconds);
      dbPerEvent.baseline.push((sides.baseline.dbMs * 1000) / events.length);
      const insertNote = insertOnly ? `, ours with COPY off ${oursInsert[round].toFixed(0)} ev/s` : '';
      process.stderr.write(
        `${label}: ours ${ours[round].toFixed(0)} ev/s (service CPU ${cpuPerEvent[round].toFixed(1)} µs/event, PostgreSQL ${dbPerEvent.ours[round].toFixed(1)})${insertNote}, ` +
          `baseline ${baseline[round].toFixed(0)} ev/s (PostgreSQL ${dbPerEvent.baseline[round].toFixed(1)} µs/event)\n`,
      );
    }
    await pg.end();
    await insertOnly?.stop();
    const warmupRatios = ours.slice(0, warmupRounds).map((o, i) => Math.round((o / baseline[i]) * 1000) / 1000);
    for (const xs of [ours, cpuPerEvent, dbPerEvent.ours, oursInsert, baseline, dbPerEvent.baseline]) xs.splice(0, warmupRounds);

    // Single events, twice: right after the batch rounds (while the service and PostgreSQL digest
    // them: series closing of every minute the rounds touched, autovacuum of the new rows), then,
    // once that backlog is worked off, for --seconds of steady live traffic during which the
    // periodic jobs run as they do in production (series closing every 15 s, the per-minute
    // scheduler, alerts and retention). The second is the figure the target is about.
    const after = rounds > 0 ? await singleEvents(bases, events, { rate, seconds: Math.min(seconds, 15), warmup, serviceCpu, dbUrl, baseline: false }) : null;
    const settle = await settleBacklog(bases[0], dbUrl, Number(values['settle-seconds']));
    const steady = await singleEvents(bases, events, { rate, seconds, warmup, serviceCpu, dbUrl, baseline: !values['no-single-baseline'] });

    const result = {
      events: events.length,
      replicas: replicas.length,
      batch,
      concurrency,
      rounds,
      slices,
      ingest_events_per_s: rounds ? Math.round(median(ours)) : null,
      baseline_insert_events_per_s: rounds ? Math.round(median(baseline)) : null,
      ratio: rounds ? Math.round((median(ours) / median(baseline)) * 1000) / 1000 : null,
      ratios_per_round: ours.map((o, i) => Math.round((o / baseline[i]) * 1000) / 1000),
      warmup_rounds: warmupRounds,
      // The warm-up rounds' ratios (not in the figures above).
      warmup_ratios: warmupRatios,
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
      // Steady state: after the batch rounds' backlog was worked off, with the periodic jobs running.
      single_event_p50_ms: steady.p50,
      single_event_p99_ms: steady.p99,
      single_event_errors: steady.errors,
      single_event_service_cpu_ms: steady.cpuMs,
      // The first replica's event-loop delay while the single events were recorded (prom-client, 10 ms resolution).
      single_event_loop_delay_ms: steady.loopDelay,
      single_event_client_loop_delay_ms: steady.clientLoopDelay,
      // Seconds of each side's turns in which a commit was seen waiting for the disk (WAL write/flush).
      single_event_wal_wait_seconds: steady.walWaitSeconds,
      // The same events at the same rate as plain one-row INSERT commits, no service, in turns
      // with the service's (the floor: see singleEvents).
      ...(steady.baseline
        ? { single_event_baseline_p50_ms: steady.baseline.p50, single_event_baseline_p99_ms: steady.baseline.p99, single_event_baseline_errors: steady.baseline.errors }
        : {}),
      // Periodic jobs that ran (all tenants) while the steady single events were recorded.
      single_event_jobs_ran: steady.jobsRan,
      // Shipping: pushes the sink received over the whole run and their bytes (null with --no-loki).
      loki_pushes: loki ? (await loki.stats()).pushes : null,
      loki_push_bytes: loki ? (await loki.stats()).bytes : null,
      // How long the batch rounds' backlog took to settle (series closed up to the watermark, no
      // incident backlog, no autovacuum on the database), and whether it did within the deadline.
      settle_seconds: settle.seconds,
      settled: settle.settled,
      // Right after the batch rounds, while their backlog is being worked off.
      ...(after
        ? {
            after_batch_p50_ms: after.p50,
            after_batch_p99_ms: after.p99,
            after_batch_errors: after.errors,
            after_batch_loop_delay_ms: after.loopDelay,
            after_batch_wal_wait_seconds: after.walWaitSeconds,
          }
        : {}),
    };
    process.stdout.write(`machine: ${cpus()[0]?.model} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
    process.stdout.write(`load average: ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end\n`);
    process.stdout.write(`database: ${new URL(dbUrl).host}\n`);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await insertOnly?.stop();
    for (const r of replicas) await r.stop();
    await loki?.stop();
    if (!values['keep-db']) await dropDatabase(dbUrl);
  }
}

/**
 * The baseline's statements for one round: plain multi-row `INSERT … VALUES` of the same event rows
 * (ids under `prefix`, columns, JSON metadata) into `events`, `batch` rows each.
 */
function baselineStatements(events: ReturnType<typeof benchEvents>, batch: number, prefix: string): { sql: string; params: unknown[] }[] {
  const statements: { sql: string; params: unknown[] }[] = [];
  for (let i = 0; i < events.length; i += batch) {
    const slice = events.slice(i, i + batch);
    const params: unknown[] = [];
    const tuples = slice.map((e, k) => {
      const { timestamp, service, http, performance, tenant: _t, ...rest } = e;
      void _t;
      params.push('baseline', `${prefix}-b-${i + k}`, service, timestamp, 'api', performance.duration_ms, http.response.status_code, http.response.bytes, JSON.stringify({ http, performance, ...rest }), 0.1, 1, 1);
      const o = k * 12;
      return `($${o + 1},$${o + 2},$${o + 3},$${o + 4},$${o + 5},$${o + 6},$${o + 7},$${o + 8},$${o + 9},$${o + 10},$${o + 11},$${o + 12})`;
    });
    statements.push({
      sql: `INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version) VALUES ${tuples.join(',')}`,
      params,
    });
  }
  return statements;
}

interface SingleEventFigures {
  p50: number;
  p99: number;
  errors: number;
  /** The service's CPU per request (ms, all replicas, worker threads and background jobs included). */
  cpuMs: number;
  loopDelay: { p99: number; max: number } | null;
  /** The sender's own event-loop delay while recording (ms, 1 ms resolution): its pauses are in the latencies too. */
  clientLoopDelay: { p99: number; max: number };
  /** The plain-INSERT single events in the alternate turns, when asked for. */
  baseline?: { p50: number; p99: number; errors: number };
  /** Seconds in which commits waited for the WAL, by the side that was sending (see WalWaitWatch). */
  walWaitSeconds: Record<string, number>;
  /** Periodic job runs (`outcome="ran"`) by job while the requests were recorded. */
  jobsRan: Record<string, number>;
}

/**
 * Sends `n` requests open loop at `rate` per second (a slow answer does not slow the sender) and
 * returns, per lane (`label(i)` names request i's), the sorted latencies (ms) of those from index
 * `skip` on and the errors; `send(i, done)` starts request i and calls `done(ok)` when it is
 * answered. `onSkip` runs once, right before request `skip` is sent. With BENCH_SLOW_MS set, each
 * slower request is printed (lane, index, send time, latency).
 */
async function openLoop(
  n: number,
  rate: number,
  skip: number,
  label: (i: number) => string,
  send: (i: number, done: (ok: boolean) => void) => void,
  onSkip: () => Promise<void> = async () => undefined,
): Promise<Map<string, { latencies: number[]; errors: number }>> {
  const lanes = new Map<string, { latencies: number[]; errors: number }>();
  let pending = 0;
  let drained: () => void = () => undefined;
  const slowMs = process.env.BENCH_SLOW_MS ? Number(process.env.BENCH_SLOW_MS) : Infinity;
  const start = performance.now();
  if (process.env.BENCH_SLOW_MS) process.stderr.write(`open loop start: monotonic ${process.hrtime.bigint() / 1000n} µs\n`);
  for (let i = 0; i < n; i++) {
    if (i === skip) await onSkip();
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const lane = label(i);
    let figures = lanes.get(lane);
    if (!figures) lanes.set(lane, (figures = { latencies: [], errors: 0 }));
    const t = performance.now();
    pending++;
    send(i, (ok) => {
      if (!ok) figures.errors++;
      const ms = performance.now() - t;
      if (i >= skip) figures.latencies.push(ms);
      if (ms > slowMs) process.stderr.write(`slow ${lane}: request ${i} sent at +${((t - start) / 1000).toFixed(2)} s took ${ms.toFixed(1)} ms\n`);
      if (--pending === 0) drained();
    });
  }
  if (pending > 0) await new Promise<void>((r) => (drained = r));
  for (const figures of lanes.values()) figures.latencies.sort((a, b) => a - b);
  return lanes;
}

/** Each event as one single-event body, split around its timestamp (spliced in at send time). */
function singleBodies(events: ReturnType<typeof benchEvents>, n: number, prefix: string): (readonly [string, string])[] {
  return Array.from({ length: n }, (_, i) => {
    const text = JSON.stringify({ ...events[i % events.length], timestamp: '\u0000', tenant: undefined, id: `${prefix}-${i}` });
    const at = text.indexOf('"\\u0000"');
    return [text.slice(0, at + 1), text.slice(at + 7)] as const;
  });
}

/**
 * The single-event baseline takes turns with the service in slices of this many seconds. Turns of
 * one second gave the service an idle second before every turn, and the first request after it
 * came back 10-20 ms slower (cold caches and connections): 1% of the requests, the p99 itself.
 */
const BASELINE_SLICE_SECONDS = 10;

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Single-event POSTs at `rate` per second (see {@link openLoop}), stamped with the current time as
 * live traffic is: `warmup` seconds sent but not recorded (first-request costs: model loading, new
 * connections, JIT), then `seconds` recorded. With `baseline`, the recorded part alternates
 * with the single-event baseline in turns of {@link BASELINE_SLICE_SECONDS}, so it takes twice as
 * long: the same events at
 * the same rate, each a plain one-row INSERT into `events` committed on its own (synchronous_commit
 * on, as the service's writes), through a pool of 8 connections, no service at all. That is what a
 * durable commit of one row costs on this database in the same minutes, the floor under the
 * service's latency: every commit waits for the WAL flush, so the disk's fsync stalls land in both,
 * and taking turns gives both sides the same exposure to them without loading each other.
 *
 * The sender is kept light so that its own pauses do not count against the service: the bodies
 * are serialised before the clock starts (only the timestamp is spliced in at send time), and the
 * requests go through `node:http` with a keep-alive agent rather than `fetch`, which allocates
 * several times more per request and so collects garbage more often. Its own event-loop delay
 * while recording is reported (`client_loop_delay_ms`): a latency figure is only as good as the
 * sender's. The service's CPU per request counts all of the recording window (its background
 * jobs included, also in the baseline's seconds) against the service's requests.
 */
async function singleEvents(
  bases: string[],
  events: ReturnType<typeof benchEvents>,
  o: { rate: number; seconds: number; warmup: number; serviceCpu: () => number; dbUrl: string; baseline: boolean },
): Promise<SingleEventFigures> {
  const skip = o.rate * o.warmup;
  const n = o.rate * (o.warmup + (o.baseline ? 2 : 1) * o.seconds);
  const lane = (i: number) => (o.baseline && i >= skip && Math.floor((i - skip) / (o.rate * BASELINE_SLICE_SECONDS)) % 2 === 1 ? 'baseline' : 'service');
  const run = randomBytes(3).toString('hex');
  const bodies = singleBodies(events, n, `lat-${run}`);
  const targets = bases.map((b) => new URL('/ingest', b));
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const db = o.baseline ? new Pool({ connectionString: o.dbUrl, max: 8 }) : undefined;
  db?.on('error', () => undefined);
  // Seconds in which a backend of the bench database was seen waiting for the WAL to be written or
  // flushed (polled every 50 ms), by the lane that was sending then: how much of each side's time
  // the disk held commits up.
  const walWaitSeconds: Record<string, number> = {};
  let sending: string | null = null;
  const walWatch = new WalWaitWatch(o.dbUrl, () => sending, walWaitSeconds);
  const clientDelay = monitorEventLoopDelay({ resolution: 1 });
  let cpu0 = NaN;
  let jobs0: Record<string, number> = {};
  const sendToService = (i: number, done: (ok: boolean) => void) => {
    const [before, after] = bodies[i];
    const body = before + new Date().toISOString() + after;
    const req = request(targets[i % targets.length], {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-api-key': KEY },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
      res.on('error', () => done(false));
    });
    req.on('error', () => done(false));
    req.end(body);
  };
  const sendToDatabase = (i: number, done: (ok: boolean) => void) => {
    const { timestamp: _ts, service, http, performance: perf, tenant: _t, ...rest } = events[i % events.length];
    void _ts;
    void _t;
    db!
      .query({
        name: 'bench-baseline-single',
        text: `INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, bytes, metadata, score, prediction, model_version)
               VALUES ($1, $2, $3, $4, 'api', $5, $6, $7, $8, 0.1, 1, 1)`,
        values: ['baseline', `base-lat-${run}-${i}`, service, new Date(), perf.duration_ms, http.response.status_code, http.response.bytes, JSON.stringify({ http, performance: perf, ...rest })],
      })
      .then(
        () => done(true),
        () => done(false),
      );
  };
  try {
    const lanes = await openLoop(
      n,
      o.rate,
      skip,
      lane,
      (i, done) => {
        if (i >= skip) sending = lane(i);
        if (sending === 'baseline') sendToDatabase(i, done);
        else sendToService(i, done);
      },
      async () => {
        cpu0 = o.serviceCpu();
        jobs0 = await jobRuns(bases);
        void eventLoopDelay(bases[0]); // resets the service's event-loop delay histogram
        clientDelay.enable();
        walWatch.start();
      },
    );
    await walWatch.stop();
    clientDelay.disable();
    const ours = lanes.get('service')!;
    const floor = lanes.get('baseline');
    const cpuMs = (o.serviceCpu() - cpu0) / ours.latencies.length;
    const loopDelay = await eventLoopDelay(bases[0]);
    const jobs1 = await jobRuns(bases);
    const jobsRan: Record<string, number> = {};
    for (const [job, count] of Object.entries(jobs1)) if (count - (jobs0[job] ?? 0) > 0) jobsRan[job] = count - (jobs0[job] ?? 0);
    return {
      p50: r2(pct(ours.latencies, 0.5)),
      p99: r2(pct(ours.latencies, 0.99)),
      errors: ours.errors,
      cpuMs: Math.round(cpuMs * 1000) / 1000,
      loopDelay: loopDelay && { p99: r1(loopDelay.p99), max: r1(loopDelay.max) },
      clientLoopDelay: { p99: r1(clientDelay.percentile(99) / 1e6), max: r1(clientDelay.max / 1e6) },
      baseline: floor && { p50: r2(pct(floor.latencies, 0.5)), p99: r2(pct(floor.latencies, 0.99)), errors: floor.errors },
      walWaitSeconds: Object.fromEntries(Object.entries(walWaitSeconds).map(([k, v]) => [k, r2(v)])),
      jobsRan,
    };
  } finally {
    await walWatch.stop();
    agent.destroy();
    await db?.end();
  }
}

/**
 * Polls `pg_stat_activity` of the bench database every {@link WAL_POLL_MS} ms while started, and
 * adds the poll interval to `into[lane()]` each time a backend waits for the WAL to be written or
 * flushed (`LWLock:WALWrite`, `IO:WALWrite`, `IO:WALSync`).
 */
class WalWaitWatch {
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly dbUrl: string,
    private readonly lane: () => string | null,
    private readonly into: Record<string, number>,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = (async () => {
      const db = new Pool({ connectionString: this.dbUrl, max: 1 });
      db.on('error', () => undefined);
      const dbName = new URL(this.dbUrl).pathname.slice(1);
      try {
        while (!this.stopped) {
          const { rows } = await db.query<{ n: number }>(
            `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event IN ('WALWrite', 'WALSync')`,
            [dbName],
          );
          const lane = this.lane();
          if (lane && rows[0].n > 0) this.into[lane] = (this.into[lane] ?? 0) + WAL_POLL_MS / 1000;
          await new Promise((r) => setTimeout(r, WAL_POLL_MS));
        }
      } finally {
        await db.end();
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running?.catch(() => undefined);
  }
}

const WAL_POLL_MS = 50;

/** Periodic job runs so far by job name, summed over the replicas' `/prom` (scheduler_jobs_total, outcome "ran"). */
async function jobRuns(bases: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const base of bases) {
    for (const [job, count] of Object.entries(await promCounter(base, SCHEDULER_JOBS, { outcome: 'ran' }, 'job'))) out[job] = (out[job] ?? 0) + count;
  }
  return out;
}

/**
 * Waits until the tenant's backlog from the batch rounds is worked off: `GET /metrics` reports the
 * series closed up to the watermark and no incident backlog, nothing left to ship to Loki, and no
 * autovacuum worker is busy in the bench database. Gives up after `deadlineSeconds`. Returns the seconds it waited.
 */
async function settleBacklog(base: string, dbUrl: string, deadlineSeconds: number): Promise<{ seconds: number; settled: boolean }> {
  const t0 = Date.now();
  const db = new Pool({ connectionString: dbUrl, max: 1 });
  const dbName = new URL(dbUrl).pathname.slice(1);
  try {
    while (Date.now() - t0 < deadlineSeconds * 1000) {
      const m = (await (await fetch(`${base}/metrics`, { headers: { 'x-api-key': KEY } })).json()) as {
        series_watermark: string | null;
        series_closed_until: string | null;
        incident_backlog: number;
      };
      const seriesDone = !m.series_watermark || (m.series_closed_until !== null && Date.parse(m.series_closed_until) >= Date.parse(m.series_watermark) - 60_000);
      const { rows } = await db.query<{ n: number }>(
        `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND (backend_type = 'autovacuum worker' OR query LIKE 'autovacuum:%')`,
        [dbName],
      );
      // The shipping outbox (events and detections not yet pushed to Loki; none without Loki).
      const { rows: outbox } = await db.query<{ n: number }>(
        `SELECT (SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND shipped_at IS NULL) + (SELECT COUNT(*) FROM detections WHERE tenant_id = $1 AND shipped_at IS NULL) AS n`,
        [TENANT],
      );
      if (seriesDone && m.incident_backlog === 0 && rows[0].n === 0 && Number(outbox[0].n) === 0) return { seconds: Math.round((Date.now() - t0) / 100) / 10, settled: true };
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { seconds: deadlineSeconds, settled: false };
  } finally {
    await db.end();
  }
}
