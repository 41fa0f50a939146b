/**
 * Ingest benchmark: the running service on real PostgreSQL against a plain multi-row INSERT of the
 * same rows into the same table, measured in one run (this machine is shared and noisy: only the
 * ratio means much).
 *
 *   npm run bench -- ingest [--database-url URL] [--events 100000] [--batch 1000] [--concurrency 4]
 *                           [--rounds 2] [--rate 200] [--seconds 15]
 *
 * It creates a fresh database on the server of --database-url (default: the local PostgreSQL),
 * trains a model for the bench tenant with `generate-data` + `train`, starts `dist/src/main.js` on a
 * free port, then alternates: POST /ingest in batches (validated, scored, stored, acknowledged)
 * and the baseline (pg, multi-row INSERT ... VALUES of the same event rows, same durability: no
 * COPY, synchronous_commit on). Finally single-event POSTs at a fixed rate, open loop, for latency.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { cpus, totalmem } from 'os';
import { join } from 'path';
import { parseArgs } from 'util';
import { Client, Pool } from 'pg';
import { generateSyntheticLogs, SyntheticEvent } from '../src/modules/retrain/synthetic-logs';

const ROOT = join(__dirname, '..', '..');
const TENANT = 'bench';
const KEY = 'bench-key-0123456789';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export async function freshDatabase(serverUrl: string): Promise<string> {
  const name = `ad_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  const c = new Client({ connectionString: admin.toString() });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function waitReady(base: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('service not ready in 60 s');
}

/** Runs `tasks` with at most `n` in flight. */
async function pool<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }),
  );
  return out;
}

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
  const port = 18000 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: dbUrl,
    PORT: String(port),
    ENVIRONMENT: 'production',
    TENANTS: TENANT,
    DEFAULT_TENANT: TENANT,
    TENANT_API_KEYS: JSON.stringify({ [TENANT]: KEY }),
    RATE_LIMIT_PER_MINUTE: '100000000',
    LOG_LEVEL: 'warn',
    TRAINING_DATASET_PATH: `/tmp/${TENANT}-${process.pid}-training.json`,
    MODELS_DIR: `/tmp/${TENANT}-${process.pid}-models`,
  };
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  execFileSync(process.execPath, [cli, 'generate-data', '--days', '1', '--seed', '3'], { env, stdio: 'ignore' });
  execFileSync(process.execPath, [cli, 'train'], { env, stdio: 'ignore' });
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const service = spawn(process.execPath, [...profile, join(ROOT, 'dist', 'src', 'main.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitReady(base, service);

    // The same events for both sides; each round uses fresh ids so nothing is deduplicated away.
    const events: SyntheticEvent[] = [];
    for (const e of generateSyntheticLogs({ tenants: [TENANT], days: 2, end: new Date(), seed: 11, rateScale: 2 })) {
      delete e.label;
      events.push(e);
      if (events.length >= total) break;
    }
    const pg = new Pool({ connectionString: dbUrl, max: concurrency });

    const ours: number[] = [];
    const baseline: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const prefix = `r${round}-${randomBytes(3).toString('hex')}`;
      const bodies: string[] = [];
      for (let i = 0; i < events.length; i += batch) {
        bodies.push(JSON.stringify(events.slice(i, i + batch).map((e, k) => ({ ...e, id: `${prefix}-${i + k}`, tenant: undefined }))));
      }
      let t0 = process.hrtime.bigint();
      await pool(
        bodies.map((body) => async () => {
          const res = await fetch(`${base}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body });
          if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
          await res.arrayBuffer();
        }),
        concurrency,
      );
      ours.push(events.length / (Number(process.hrtime.bigint() - t0) / 1e9));

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
      t0 = process.hrtime.bigint();
      await pool(
        statements.map((s) => async () => {
          await pg.query(s.sql, s.params);
        }),
        concurrency,
      );
      baseline.push(events.length / (Number(process.hrtime.bigint() - t0) / 1e9));
      process.stderr.write(`round ${round + 1}: ours ${ours[round].toFixed(0)} ev/s, baseline ${baseline[round].toFixed(0)} ev/s\n`);
    }
    await pg.end();

    // Single events at a fixed rate, open loop: a slow answer does not slow the sender. The first
    // `warmup` seconds are sent but not recorded: steady state, not first-request costs (model
    // loading, new database connections, JIT).
    const latencies: number[] = [];
    const skip = rate * warmup;
    const n = rate * (seconds + warmup);
    const start = performance.now();
    const inflight: Promise<void>[] = [];
    let errors = 0;
    for (let i = 0; i < n; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Live traffic: stamped now, as a service pushing its requests would.
      const body = JSON.stringify({ ...events[i % events.length], timestamp: new Date().toISOString(), tenant: undefined, id: `lat-${i}-${randomBytes(3).toString('hex')}` });
      const t = performance.now();
      inflight.push(
        fetch(`${base}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body }).then(
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
    latencies.sort((a, b) => a - b);

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const result = {
      events: events.length,
      batch,
      concurrency,
      rounds,
      ingest_events_per_s: rounds ? Math.round(median(ours)) : null,
      baseline_insert_events_per_s: rounds ? Math.round(median(baseline)) : null,
      ratio: rounds ? Math.round((median(ours) / median(baseline)) * 1000) / 1000 : null,
      ratios_per_round: ours.map((o, i) => Math.round((o / baseline[i]) * 1000) / 1000),
      single_event_rate_per_s: rate,
      single_event_seconds: seconds,
      single_event_warmup_seconds: warmup,
      single_event_p50_ms: Math.round(pct(latencies, 0.5) * 100) / 100,
      single_event_p99_ms: Math.round(pct(latencies, 0.99) * 100) / 100,
      single_event_errors: errors,
    };
    process.stdout.write(`machine: ${cpus()[0]?.model} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
    process.stdout.write(`database: ${new URL(dbUrl).host}\n`);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }
}
