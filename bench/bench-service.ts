/**
 * What the ingest and partition benchmarks share: a fresh database, the built service started on
 * it with a trained model for one tenant, batch ingest rounds through `POST /ingest`.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { readFileSync } from 'fs';
import { join } from 'path';
import { Client } from 'pg';
import { generateSyntheticLogs, SyntheticEvent } from '../src/modules/retrain/synthetic-logs';

const ROOT = join(__dirname, '..', '..');
export const TENANT = 'bench';
export const KEY = 'bench-key-0123456789';
const METRICS_TOKEN = 'bench-metrics-token-0123456789';

/**
 * The service's event-loop delay since the previous call (prom-client's default metrics reset
 * their histogram at each scrape of /prom): p99 and max in ms, or null when not exposed.
 */
export async function eventLoopDelay(base: string): Promise<{ p99: number; max: number } | null> {
  try {
    const text = await (await fetch(`${base}/prom`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const read = (name: string) => Number(new RegExp(`^${name} ([0-9.eE+-]+)`, 'm').exec(text)?.[1]) * 1000;
    const p99 = read('nodejs_eventloop_lag_p99_seconds');
    const max = read('nodejs_eventloop_lag_max_seconds');
    return Number.isFinite(p99) && Number.isFinite(max) ? { p99, max } : null;
  } catch {
    return null;
  }
}

/**
 * A counter from the service's `/prom`, summed by the value of label `by` over the series whose
 * labels include all of `where` (e.g. job runs by job). Empty when the service cannot be scraped.
 */
export async function promCounter(base: string, name: string, where: Record<string, string>, by: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let text: string;
  try {
    text = await (await fetch(`${base}/prom`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels = Object.fromEntries([...line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(where).some(([k, v]) => labels[k] !== v)) continue;
    const key = labels[by] ?? '';
    out[key] = (out[key] ?? 0) + Number(line.slice(close + 1).trim());
  }
  return out;
}

/**
 * The environment a benchmark starts the service with: production settings, `tenants` with their
 * `keys` (tenant → key), a rate limit no bench reaches, `metricsToken` for /prom, no training
 * dataset and models under `/tmp/<name>-<pid>-models`; `extra` (PORT, LOG_LEVEL, intervals, …) last.
 */
export function productionEnv(
  name: string,
  dbUrl: string,
  tenants: string[],
  keys: Record<string, string>,
  metricsToken: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    ENVIRONMENT: 'production',
    MULTI_TENANT_ENABLED: 'true',
    TENANTS: tenants.join(','),
    DEFAULT_TENANT: tenants[0],
    TENANT_API_KEYS: JSON.stringify(keys),
    RATE_LIMIT_PER_MINUTE: '100000000',
    METRICS_TOKEN: metricsToken,
    LOG_LEVEL: 'warn',
    TRAINING_DATASET_PATH: `/tmp/${name}-${process.pid}-no-dataset.json`,
    MODELS_DIR: `/tmp/${name}-${process.pid}-models`,
    ...extra,
  };
}

/** The `p` quantile (0–1) of an ascending array. */
export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Creates an empty database `<prefix>_<time>_<random>` on the server of `serverUrl`; returns its URL. */
export async function freshDatabase(serverUrl: string, prefix = 'ad_bench'): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`bad database name prefix: ${prefix}`);
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
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

/** Drops the database of `url` (a database made by {@link freshDatabase}), closing its connections. */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** Resolves once the service at `base` answers /readyz; throws when `child` exits or after 60 s. */
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
export async function pool<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
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

export interface BenchService {
  base: string;
  /** The service's process id. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat (Linux; null
 * elsewhere or once it has exited). Differences over a round give its CPU per event whatever
 * else runs on the machine.
 */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, in parentheses): utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
/** USER_HZ of /proc times: 100 on every Linux we run on. */
const CLOCK_TICKS = 100;

/**
 * Trains a model for the bench tenant (`generate-data` + `train`, unless `train` is false) and starts `dist/src/main.js`
 * (production settings, migrations applied at start) on a free port; resolves once /readyz answers.
 */
export async function startService(dbUrl: string, opts: { cpuProfileDir?: string; env?: Record<string, string>; train?: boolean } = {}): Promise<BenchService> {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const env = {
    ...process.env,
    DATABASE_URL: dbUrl,
    PORT: String(port),
    ENVIRONMENT: 'production',
    TENANTS: TENANT,
    DEFAULT_TENANT: TENANT,
    TENANT_API_KEYS: JSON.stringify({ [TENANT]: KEY }),
    RATE_LIMIT_PER_MINUTE: '100000000',
    METRICS_TOKEN,
    LOG_LEVEL: 'warn',
    TRAINING_DATASET_PATH: `/tmp/${TENANT}-${process.pid}-training.json`,
    MODELS_DIR: `/tmp/${TENANT}-${process.pid}-models`,
    ...opts.env,
  };
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  if (opts.train !== false) {
    execFileSync(process.execPath, [cli, 'generate-data', '--days', '1', '--seed', '3'], { env, stdio: 'ignore' });
    execFileSync(process.execPath, [cli, 'train'], { env, stdio: 'ignore' });
  }
  const profile = opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`, `--cpu-prof-interval=${process.env.BENCH_CPU_PROF_INTERVAL ?? 1000}`] : [];
  const service = spawn(process.execPath, [...profile, join(ROOT, 'dist', 'src', 'main.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = async () => {
    if (service.exitCode !== null) return;
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base, service);
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, pid: service.pid!, stop };
}

/**
 * `total` events of the bench tenant (`generate-data`-style logs of the two days ending now, at
 * twice its traffic, more when that is too few), without labels, and without those older than 47
 * hours: the service's default accepted age is its retention window (48 h), and the oldest minutes
 * would fall out of it while the bench runs.
 */
export function benchEvents(total: number): SyntheticEvent[] {
  const oldest = Date.now() - 47 * 3_600_000;
  const end = new Date();
  for (let rateScale = 2; ; ) {
    const events: SyntheticEvent[] = [];
    for (const e of generateSyntheticLogs({ tenants: [TENANT], days: 2, end, seed: 11, rateScale })) {
      if (Date.parse(e.timestamp) < oldest) continue;
      delete e.label;
      events.push(e);
      if (events.length >= total) return events;
    }
    // Too few at this traffic: scale it up by what was missing (with a margin) and generate again.
    rateScale = Math.ceil(rateScale * (total / Math.max(1, events.length)) * 1.1);
  }
}

/** The JSON bodies of `events` in batches of `batch`, each event with the id `<prefix>-<index>`. */
export function ingestBodies(events: SyntheticEvent[], batch: number, prefix: string, at?: (i: number) => string): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += batch) {
    bodies.push(
      JSON.stringify(events.slice(i, i + batch).map((e, k) => ({ ...e, ...(at ? { timestamp: at(i + k) } : {}), id: `${prefix}-${i + k}`, tenant: undefined }))),
    );
  }
  return bodies;
}

/**
 * POSTs the bodies to /ingest, `concurrency` in flight, spread round-robin over the replicas in
 * `base`; returns events per second. @throws on any answer but 200.
 */
export async function ingestRound(base: string | string[], bodies: string[], events: number, concurrency: number): Promise<number> {
  const bases = typeof base === 'string' ? [base] : base;
  const t0 = process.hrtime.bigint();
  await pool(
    bodies.map((body, i) => async () => {
      const res = await fetch(`${bases[i % bases.length]}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body });
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      await res.arrayBuffer();
    }),
    concurrency,
  );
  return events / (Number(process.hrtime.bigint() - t0) / 1e9);
}
