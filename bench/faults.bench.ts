/**
 * Fault benchmarks of issue 17, against real processes of the compiled service (`dist/src/main.js`)
 * on a fresh database (`ad_issue_17_faults_*` on the server of --database-url, dropped at the end
 * unless --keep-db), with small real HTTP servers standing in for Slack and Loki
 * (`bench/fault-fakes.ts`):
 *
 *   npm run bench -- faults --scenario slack    [--hang-seconds 30] [--window-seconds 120] [--services 4]
 *   npm run bench -- faults --scenario replicas [--seconds 180] [--interval 10] [--tenants 3]
 *   npm run bench -- faults --scenario sigterm  [--rate 4] [--clients 4] [--events 3000] [--warmup 8]
 *                                               [--after-503 keep|leave] [--loki-delay-ms 800]
 *   common: [--database-url URL] [--keep-db] [--env NAME=VALUE ...]
 *
 * - `slack`: a Slack that, from the first call it gets and for --window-seconds, takes every call
 *   (a message is posted when read) and answers it after --hang-seconds, then answers at once. Two
 *   tenants: one routed to a bot (`chat.postMessage` + `conversations.history` with metadata), one to
 *   an incoming webhook, both with SLACK_TIMEOUT_MS and SLACK_RETRY_TIMEOUT_MS at their defaults.
 *   Each tenant sends 150 minutes of per-minute traffic of --services services, each with a
 *   six-fold latency spike, so the series job opens (and ends) incidents: several alert messages
 *   during the hang. Counts the messages Slack got per alert id against `GET /alerts`.
 * - `replicas`: two replicas on one database with DETECTION_INTERVAL_SECONDS=--interval, --tenants
 *   tenants, a fake Loki (the scheduler's pull is one `query_range` per tenant run). Over --seconds,
 *   counts per tenant and interval: the runs recorded in `job_ticks` (polled, and its `runs`
 *   column), the fake Loki's pulls, and each replica's `scheduler_jobs_total` by outcome.
 * - `sigterm`: keep-alive clients send --rate requests/s in all, each of --events events; once
 *   --warmup requests were answered 200, SIGTERM. Clients keep sending after a 503 (`keep`: a
 *   load balancer still routing here) or turn away (`leave`). Every request must be 200 with all
 *   its events stored or 503 with none (a refused connection after exit sends nothing); the exit
 *   code and time are checked against SHUTDOWN_GRACE_SECONDS. A slow fake Loki (--loki-delay-ms
 *   per push) keeps a backlog and a push in flight; after a restart on the same database (fast
 *   Loki) has shipped the backlog, every stored event must have reached Loki exactly once.
 *
 * Each run prints the machine, the load average before and after, the figures and `pass`.
 */
import { ChildProcess, spawn } from 'child_process';
import { Agent } from 'http';
import { cpus, loadavg } from 'os';
import { join } from 'path';
import { parseArgs } from 'util';
import { Client } from 'pg';
import { CountingLoki, HangingSlack } from './fault-fakes';
import { IngestOutcome as Outcome, postIngest as post } from './ingest-client';
import { dropDatabase, freshDatabase, productionEnv, waitReady } from './bench-service';

const ROOT = join(__dirname, '..', '..');
const MINUTE = 60_000;
const METRICS_TOKEN = 'faults-metrics-token-0123456789';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const out = (line: string) => process.stdout.write(line + '\n');

/** Waits until `check` answers a value (not undefined/false); throws after `timeoutMs`. */
async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface Service {
  child: ChildProcess;
  base: string;
  port: number;
  /** stdout and stderr lines (JSON logs). */
  log: string[];
  exited: Promise<{ code: number | null; signal: string | null; at: number }>;
}

/** Starts `dist/src/main.js` with `env` on a free port and waits for /readyz. */
async function startService(env: Record<string, string>): Promise<Service> {
  const port = 20000 + Math.floor(Math.random() * 5000);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => log.push(...c.toString('utf8').split('\n').filter(Boolean)));
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })),
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base, child);
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${log.slice(-10).join('\n')}`);
  }
  return { child, base, port, log, exited };
}

async function stopService(s: Service): Promise<{ code: number | null; signal: string | null; at: number }> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  return s.exited;
}

/** The environment every scenario starts from: production settings, tenants with keys. */
function baseEnv(dbUrl: string, tenants: string[], keys: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  return productionEnv('faults', dbUrl, tenants, keys, METRICS_TOKEN, { LOG_LEVEL: 'info', ...extra });
}

/** `anomaly_detector_scheduler_jobs_total` of one replica: `job tenant outcome` → count. */
async function jobCounters(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/prom`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('anomaly_detector_scheduler_jobs_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    m.set(`${labels.job} ${labels.tenant} ${labels.outcome}`, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return m;
}

/** Per-minute request logs of one service (deterministic), latency × `spike(m)` in minute m. */
function minuteTraffic(service: string, start: number, minutes: number, perMinute: number, spike: (m: number) => number): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (let m = 0; m < minutes; m++) {
    for (let i = 0; i < perMinute; i++) {
      const jitter = ((i * 7919 + m * 104729) % 1000) / 1000;
      events.push({
        timestamp: new Date(start + m * MINUTE + Math.floor((i / perMinute) * MINUTE)).toISOString(),
        service,
        http: { request: { method: 'GET', path: '/p' }, response: { status_code: 200, bytes: Math.round(5000 * (0.9 + 0.2 * jitter)) } },
        performance: { duration_ms: Math.round(100 * (0.6 + 0.8 * jitter) * spike(m) * 10) / 10 },
      });
    }
  }
  return events;
}

interface AlertItem {
  id: string;
  kind: string;
  service: string;
  created_at: string;
  delivery: { status: string; attempts: number; uncertain_attempts: number; last_outcome: string | null; last_error: string | null };
}

async function allAlerts(base: string, key: string): Promise<AlertItem[]> {
  const items: AlertItem[] = [];
  let cursor: string | null = null;
  do {
    const res = await fetch(`${base}/alerts?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: { 'x-api-key': key } });
    if (res.status !== 200) throw new Error(`GET /alerts answered ${res.status}`);
    const page = (await res.json()) as { items: AlertItem[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

// --- scenario 1: Slack hangs ------------------------------------------------------------------

async function slackScenario(dbUrl: string, o: Record<string, string | boolean | string[] | undefined>, extra: Record<string, string>): Promise<boolean> {
  const hangMs = Number(o['hang-seconds']) * 1000;
  const windowMs = Number(o['window-seconds']) * 1000;
  const services = Number(o.services);
  const slack = await new HangingSlack(hangMs, windowMs).start();
  const [bot, hook] = ['faults-bot', 'faults-hook'];
  const keys = { [bot]: `${bot}-key-0123456789`, [hook]: `${hook}-key-0123456789` };
  const channel = 'C-faults-bot';
  const svc = await startService(
    baseEnv(dbUrl, [bot, hook], keys, {
      SLACK_API_URL: slack.apiUrl,
      TENANT_SLACK_BOTS: JSON.stringify({ [bot]: { token: 'xoxb-faults', channel } }),
      TENANT_SLACK_WEBHOOKS: JSON.stringify({ [hook]: slack.webhookUrl(hook) }),
      // The data ends in the past: the wall clock must not close its empty minutes (traffic drops).
      SERIES_IDLE_SECONDS: '86400',
      ...extra,
    }),
  );
  const started = Date.now();
  try {
    const base = Math.floor((Date.now() - 3 * 3_600_000) / MINUTE) * MINUTE;
    for (const tenant of [bot, hook]) {
      const events = Array.from({ length: services }, (_, s) =>
        minuteTraffic(`svc-${s}`, base, 150, 10, (m) => (m >= 100 + 3 * s && m < 106 + 3 * s ? 6 : 1)),
      )
        .flat()
        .sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
      for (let i = 0; i < events.length; i += 2000) {
        const res = await fetch(`${svc.base}/ingest`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': keys[tenant] },
          body: JSON.stringify(events.slice(i, i + 2000)),
        });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      }
    }
    out(`slack: traffic sent in ${((Date.now() - started) / 1000).toFixed(1)} s; waiting for the hang window and every alert to settle`);
    let lastCount = -1;
    let stableSince = Date.now();
    const alerts = await until(
      async () => {
        const lists = await Promise.all([allAlerts(svc.base, keys[bot]), allAlerts(svc.base, keys[hook])]);
        const all = lists.flat();
        if (all.length !== lastCount) {
          lastCount = all.length;
          stableSince = Date.now();
        }
        const settled = all.length > 0 && all.every((a) => ['sent', 'failed', 'skipped'].includes(a.delivery.status));
        const lastCall = Math.max(0, ...slack.requests.map((r) => r.at));
        return settled && Date.now() > slack.windowEnd && Date.now() - stableSince > 30_000 && Date.now() - lastCall > 15_000
          ? { [bot]: lists[0], [hook]: lists[1] }
          : undefined;
      },
      20 * MINUTE,
      'the alerts to settle after the hang window',
      2000,
    );
    const windowStart = slack.windowStart!;
    const report = (tenant: string, target: string) => {
      const list = alerts[tenant];
      const perAlert = slack.messagesPerAlert(target);
      const counts = list.map((a) => perAlert.get(a.id) ?? 0);
      const duplicates = counts.reduce((s, n) => s + Math.max(0, n - 1), 0);
      const uncounted = list.filter((a) => (perAlert.get(a.id) ?? 0) - 1 > a.delivery.uncertain_attempts).length;
      const unknown = [...perAlert.keys()].filter((id) => !list.some((a) => a.id === id)).length;
      const byStatus: Record<string, number> = {};
      for (const a of list) byStatus[a.delivery.status] = (byStatus[a.delivery.status] ?? 0) + 1;
      return {
        alerts: list.length,
        alerts_created_in_window: list.filter((a) => Date.parse(a.created_at) < windowStart + windowMs).length,
        kinds: [...new Set(list.map((a) => a.kind))].join(','),
        status: byStatus,
        attempts: list.reduce((s, a) => s + a.delivery.attempts, 0),
        uncertain_attempts: list.reduce((s, a) => s + a.delivery.uncertain_attempts, 0),
        messages: counts.reduce((s, n) => s + n, 0),
        max_messages_per_alert: Math.max(0, ...counts),
        alerts_without_message: counts.filter((n) => n === 0).length,
        duplicates,
        duplicates_not_counted: uncounted,
        messages_of_unknown_alerts: unknown,
        calls: slack.requests.filter((r) => r.target === target).reduce<Record<string, number>>((m, r) => ({ ...m, [`${r.method}${r.hung ? ' (hung)' : ''}`]: (m[`${r.method}${r.hung ? ' (hung)' : ''}`] ?? 0) + 1 }), {}),
      };
    };
    const b = report(bot, channel);
    const w = report(hook, hook);
    const passBot = b.alerts > 1 && b.duplicates === 0 && b.alerts_without_message === 0 && b.messages_of_unknown_alerts === 0 && b.status.sent === b.alerts;
    const passHook = w.alerts > 1 && w.max_messages_per_alert <= 2 && w.duplicates_not_counted === 0 && w.alerts_without_message === 0 && w.messages_of_unknown_alerts === 0;
    out(`slack: hang ${hangMs / 1000} s per call for ${windowMs / 1000} s from the first call (window ${new Date(windowStart).toISOString()}); SLACK_TIMEOUT_MS ${extra.SLACK_TIMEOUT_MS ?? 'default'}, SLACK_RETRY_TIMEOUT_MS ${extra.SLACK_RETRY_TIMEOUT_MS ?? 'default'}`);
    out(`bot (chat.postMessage): ${JSON.stringify(b)}`);
    out(`webhook: ${JSON.stringify(w)}`);
    out(JSON.stringify({ scenario: 'slack', bot_duplicates: b.duplicates, webhook_duplicates: w.duplicates, webhook_max_per_alert: w.max_messages_per_alert, webhook_uncertain_attempts: w.uncertain_attempts, pass_bot: passBot, pass_webhook: passHook, seconds: Math.round((Date.now() - started) / 1000) }));
    return passBot && passHook;
  } finally {
    const exit = await stopService(svc);
    if (exit.code !== 0) out(`slack: the service exited with ${exit.code ?? exit.signal}`);
    await slack.stop();
  }
}

// --- scenario 2: two replicas, one run per tenant per tick ------------------------------------

async function replicasScenario(dbUrl: string, o: Record<string, string | boolean | string[] | undefined>, extra: Record<string, string>): Promise<boolean> {
  const seconds = Number(o.seconds);
  const intervalMs = Number(o.interval) * 1000;
  const tenants = Array.from({ length: Number(o.tenants) }, (_, i) => `faults-r${i}`);
  const keys = Object.fromEntries(tenants.map((t) => [t, `${t}-key-0123456789`]));
  const loki = await new CountingLoki().start();
  const env = baseEnv(dbUrl, tenants, keys, {
    DETECTION_INTERVAL_SECONDS: String(intervalMs / 1000),
    LOKI_PUSH_URL: loki.pushUrl,
    LOKI_MULTI_TENANT: 'true',
    ...extra,
  });
  const [a, b] = await Promise.all([startService(env), startService(env)]);
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();
  try {
    // Start and end mid-interval, so every interval in between is whole and its runs are over.
    const b0 = Math.floor(Date.now() / intervalMs) + 1;
    const n = Math.round((seconds * 1000) / intervalMs);
    await sleep(Math.max(0, b0 * intervalMs + intervalMs / 2 - Date.now()));
    const t0 = Date.now();
    const runsOf = async () =>
      new Map(
        ((await pg.query(`SELECT job, tenant_id, runs, interval_ms FROM job_ticks`)).rows as { job: string; tenant_id: string; runs: string; interval_ms: string }[]).map(
          (r) => [`${r.job} ${r.tenant_id}`, { runs: Number(r.runs), intervalMs: Number(r.interval_ms) }],
        ),
      );
    const [promA0, promB0, runs0] = await Promise.all([jobCounters(a.base), jobCounters(b.base), runsOf()]);
    const starts = new Map<string, Set<number>>();
    const tEnd = (b0 + n) * intervalMs + intervalMs / 2;
    while (Date.now() < tEnd) {
      for (const r of (await pg.query(`SELECT job, tenant_id, started_at FROM job_ticks`)).rows as { job: string; tenant_id: string; started_at: Date }[]) {
        const k = `${r.job} ${r.tenant_id}`;
        if (!starts.has(k)) starts.set(k, new Set());
        starts.get(k)!.add(r.started_at.getTime());
      }
      await sleep(250);
    }
    const [promA1, promB1, runs1] = await Promise.all([jobCounters(a.base), jobCounters(b.base), runsOf()]);
    const t1 = Date.now();
    const delta = (m1: Map<string, number>, m0: Map<string, number>, k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    const rows: Record<string, unknown>[] = [];
    let pass = true;
    const jobs = [...new Set([...runs1.keys()].map((k) => k.split(' ')[0]))].sort();
    for (const job of jobs) {
      for (const tenant of tenants) {
        const k = `${job} ${tenant}`;
        const iv = runs1.get(k)?.intervalMs ?? intervalMs;
        if (iv <= 1) continue; // only passes asked for on purpose (not timed)
        // Intervals of this job that began in the window, early enough for their run to be over
        // by t1 (runs fire early in their interval): the counters' deltas cover exactly these.
        const first = Math.ceil(t0 / iv);
        const last = Math.floor((t1 - Math.min(iv / 2, 5000)) / iv);
        const perBucket = new Map<number, number>();
        for (const s of starts.get(k) ?? []) {
          const bk = Math.floor(s / iv);
          if (bk >= first && bk <= last) perBucket.set(bk, (perBucket.get(bk) ?? 0) + 1);
        }
        const buckets = Math.max(0, last - first + 1);
        const runs = (runs1.get(k)?.runs ?? 0) - (runs0.get(k)?.runs ?? 0);
        const c = (p1: Map<string, number>, p0: Map<string, number>, outcome: string) => delta(p1, p0, `${job} ${tenant} ${outcome}`);
        const row: Record<string, unknown> = {
          job,
          tenant,
          interval_s: iv / 1000,
          intervals: buckets,
          intervals_with_one_start: [...perBucket.values()].filter((x) => x === 1).length,
          intervals_with_more: [...perBucket.values()].filter((x) => x > 1).length,
          runs_recorded: runs,
          a: { ran: c(promA1, promA0, 'ran'), failed: c(promA1, promA0, 'failed'), skipped: c(promA1, promA0, 'skipped') },
          b: { ran: c(promB1, promB0, 'ran'), failed: c(promB1, promB0, 'failed'), skipped: c(promB1, promB0, 'skipped') },
        };
        if (job === 'scheduler') {
          const pulls = new Map<number, number>();
          for (const q of loki.queries) {
            if (q.orgId !== tenant) continue;
            const bk = Math.floor(q.at / iv);
            if (bk >= first && bk <= last) pulls.set(bk, (pulls.get(bk) ?? 0) + 1);
          }
          row.loki_pulls = [...pulls.values()].reduce((s, x) => s + x, 0);
          row.intervals_with_one_pull = [...pulls.values()].filter((x) => x === 1).length;
          const ranTotal = (row.a as { ran: number; failed: number }).ran + (row.a as { failed: number }).failed + (row.b as { ran: number }).ran + (row.b as { failed: number }).failed;
          const ok =
            row.intervals_with_one_start === buckets &&
            row.intervals_with_more === 0 &&
            row.intervals_with_one_pull === buckets &&
            row.loki_pulls === buckets &&
            runs === buckets &&
            ranTotal === buckets;
          row.pass = ok;
          pass &&= ok;
        }
        rows.push(row);
      }
    }
    out(`replicas: 2 replicas, ${tenants.length} tenants, DETECTION_INTERVAL_SECONDS=${intervalMs / 1000}, measured ${((t1 - t0) / 1000).toFixed(1)} s (${new Date(t0).toISOString()} to ${new Date(t1).toISOString()})`);
    for (const r of rows) out(JSON.stringify(r));
    const sched = rows.filter((r) => r.job === 'scheduler');
    out(
      JSON.stringify({
        scenario: 'replicas',
        scheduler_intervals: sched.reduce((s, r) => s + (r.intervals as number), 0),
        scheduler_runs: sched.reduce((s, r) => s + (r.runs_recorded as number), 0),
        scheduler_skipped: sched.reduce((s, r) => s + (r.a as { skipped: number }).skipped + (r.b as { skipped: number }).skipped, 0),
        loki_pulls: sched.reduce((s, r) => s + (r.loki_pulls as number), 0),
        pass,
      }),
    );
    return pass;
  } finally {
    await pg.end();
    const exits = await Promise.all([stopService(a), stopService(b)]);
    if (exits.some((e) => e.code !== 0)) out(`replicas: exit codes ${exits.map((e) => e.code ?? e.signal).join(', ')}`);
    await loki.stop();
  }
}

// --- scenario 3: SIGTERM under keep-alive load -------------------------------------------------


async function sigtermScenario(dbUrl: string, o: Record<string, string | boolean | string[] | undefined>, extra: Record<string, string>): Promise<boolean> {
  const rate = Number(o.rate);
  const nClients = Number(o.clients);
  const perRequest = Number(o.events);
  const warmup = Number(o.warmup);
  const keep = o['after-503'] !== 'leave';
  const tenant = 'faults-sd';
  const key = `${tenant}-key-0123456789`;
  const loki = await new CountingLoki().start();
  loki.pushDelayMs = Number(o['loki-delay-ms']);
  const env = baseEnv(dbUrl, [tenant], { [tenant]: key }, { LOKI_PUSH_URL: loki.pushUrl, ...extra });
  const grace = Number(env.SHUTDOWN_GRACE_SECONDS ?? 25);
  const svc = await startService(env);
  const outcomes: Outcome[] = [];
  let stopLoad = false;
  let seq = 0;
  const periodMs = (1000 * nClients) / rate;
  const t0 = Date.now();
  const clients = Array.from({ length: nClients }, async (_, c) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let next = t0 + (c * periodMs) / nClients;
    while (!stopLoad) {
      await sleep(Math.max(0, next - Date.now()));
      next = Math.max(next + periodMs, Date.now());
      if (stopLoad) break;
      const n = seq++;
      const at = new Date().toISOString();
      const ids = Array.from({ length: perRequest }, (_, i) => `sd-${c}-${n}-${i}`);
      const body = JSON.stringify(
        ids.map((id, i) => ({
          id,
          timestamp: at,
          service: `svc-${c}`,
          http: { request: { method: 'GET', path: '/p' }, response: { status_code: 200, bytes: 5000 + (i % 100) } },
          performance: { duration_ms: 80 + (i % 40) },
        })),
      );
      const r = await post(agent, svc.port, key, body, ids);
      outcomes.push(r);
      if ('error' in r && r.error === 'ECONNREFUSED') break; // the process is gone
      if (!keep && 'status' in r && r.status === 503) break;
    }
    agent.destroy();
  });
  let sigtermAt = 0;
  let exit: { code: number | null; signal: string | null; at: number };
  try {
    await until(() => outcomes.filter((x) => 'status' in x && x.status === 200).length >= warmup, 5 * MINUTE, `${warmup} answered requests`, 100);
    const backlogAtSigterm = Number(
      (await (async () => {
        const pg = new Client({ connectionString: dbUrl });
        await pg.connect();
        try {
          return (await pg.query(`SELECT COUNT(*) AS n FROM events WHERE shipped_at IS NULL`)).rows[0].n as string;
        } finally {
          await pg.end();
        }
      })()),
    );
    sigtermAt = Date.now();
    svc.child.kill('SIGTERM');
    exit = await Promise.race([svc.exited, sleep((grace + 60) * 1000).then(() => ({ code: null, signal: 'no exit', at: Date.now() }))]);
    stopLoad = true;
    await Promise.all(clients);
    const pushesInFlightAtSigterm = loki.pushes.filter((p) => p.at <= sigtermAt && p.answeredAt > sigtermAt).length;
    const pg = new Client({ connectionString: dbUrl });
    await pg.connect();
    let report: Record<string, unknown>;
    let pass: boolean;
    try {
      const stored = new Set(((await pg.query(`SELECT id FROM events WHERE tenant_id = $1`, [tenant])).rows as { id: string }[]).map((r) => r.id));
      const unshippedAtExit = Number((await pg.query(`SELECT COUNT(*) AS n FROM events WHERE shipped_at IS NULL`)).rows[0].n);
      const drainLine = svc.log.find((l) => l.includes('no request in progress after'));
      const drainEndedAt = drainLine ? Date.parse((JSON.parse(drainLine) as { time: string }).time) : Infinity;
      const kinds: Record<string, number> = {};
      const bad: string[] = [];
      const first503 = Math.min(...outcomes.filter((x) => 'status' in x && x.status === 503).map((x) => x.at));
      for (const x of outcomes) {
        const n = x.ids.filter((id) => stored.has(id)).length;
        let kind: string;
        if ('status' in x) {
          kind = `${x.status}${x.status === 503 ? ` ${x.code} connection:${x.connection}` : ''} stored ${n === 0 ? 'none' : n === x.ids.length ? 'all' : 'some'}`;
          const ok = (x.status === 200 && n === x.ids.length) || (x.status === 503 && n === 0 && x.code === 'SERVICE_UNAVAILABLE' && x.connection === 'close');
          if (!ok) bad.push(`${kind} sent ${x.sentAt - sigtermAt} ms after SIGTERM`);
        } else {
          kind = `${x.error} stored ${n === 0 ? 'none' : n === x.ids.length ? 'all' : 'some'}`;
          // A refused connection sent nothing. A reset once draining has ended is a connection the
          // kernel still held for accepting when the port closed: nothing of it was read (reported
          // apart). Any other error, or anything stored, is a cut request.
          const portClosing = x.error === 'ECONNRESET' && x.sentAt >= drainEndedAt;
          if (portClosing) kind += ' (sent after draining ended: the port was closing)';
          if (n !== 0 || (x.error !== 'ECONNREFUSED' && !portClosing)) bad.push(`${kind} sent ${x.sentAt - sigtermAt} ms after SIGTERM`);
        }
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      const answered200 = outcomes.filter((x) => 'status' in x && x.status === 200);
      const elapsed = (answered200.length ? Math.max(...answered200.map((x) => x.at)) : sigtermAt) - t0;
      const exitMs = exit.at - sigtermAt;
      report = {
        requests: outcomes.length,
        outcomes: kinds,
        bad,
        accepted_after_first_503: answered200.filter((x) => x.sentAt > first503).length,
        sent_after_sigterm: outcomes.filter((x) => x.sentAt >= sigtermAt).length,
        answered_200_after_sigterm: answered200.filter((x) => x.sentAt >= sigtermAt).length,
        events_per_s_before_sigterm: Math.round((answered200.filter((x) => x.at <= sigtermAt).length * perRequest) / ((sigtermAt - t0) / 1000)),
        load_s: Math.round(elapsed / 1000),
        exit_code: exit.code,
        exit_signal: exit.signal,
        exit_ms_after_sigterm: exitMs,
        grace_s: grace,
        log: svc.log.filter((l) => /draining|no request in progress|stopped after|did not finish|shutdown failed/.test(l)).map((l) => {
          try {
            const e = JSON.parse(l) as { msg: string; time: string };
            return `+${Date.parse(e.time) - sigtermAt} ms: ${e.msg}`;
          } catch {
            return l;
          }
        }),
        loki_backlog_at_sigterm: backlogAtSigterm,
        loki_pushes_in_flight_at_sigterm: pushesInFlightAtSigterm,
        loki_unshipped_at_exit: unshippedAtExit,
      };
      pass = bad.length === 0 && exit.code === 0 && exitMs < grace * 1000;
      // Restart on the same database with a fast Loki: the backlog goes out, nothing twice.
      loki.pushDelayMs = 0;
      const restarted = await startService(env);
      try {
        await until(
          async () => Number((await pg.query(`SELECT (SELECT COUNT(*) FROM events WHERE shipped_at IS NULL) + (SELECT COUNT(*) FROM detections WHERE shipped_at IS NULL) AS n`)).rows[0].n) === 0,
          15 * MINUTE,
          'the Loki backlog to be shipped after the restart',
          1000,
        );
      } finally {
        const e2 = await stopService(restarted);
        report.restart_exit_code = e2.code;
      }
      const shipped = loki.eventIds();
      const dup = loki.duplicates();
      report.loki_entries = loki.counts.size;
      report.loki_duplicate_entries = dup.entries;
      report.loki_repeated_pushes_of_an_entry = dup.repeats;
      report.stored_events = stored.size;
      report.stored_events_not_in_loki = [...stored].filter((id) => !shipped.has(id)).length;
      pass &&= dup.entries === 0 && report.stored_events_not_in_loki === 0 && report.restart_exit_code === 0;
    } finally {
      await pg.end();
    }
    out(`sigterm: ${nClients} keep-alive clients, ${rate} requests/s of ${perRequest} events, after a 503 the clients ${keep ? 'keep sending here' : 'turn away'}; fake Loki ${o['loki-delay-ms']} ms per push until the restart`);
    out(JSON.stringify(report));
    out(JSON.stringify({ scenario: 'sigterm', exit_code: report.exit_code, exit_ms_after_sigterm: report.exit_ms_after_sigterm, bad_requests: (report.bad as string[]).length, loki_duplicate_entries: report.loki_duplicate_entries, pass }));
    return pass;
  } finally {
    stopLoad = true;
    if (svc.child.exitCode === null && svc.child.signalCode === null) svc.child.kill('SIGKILL');
    await loki.stop();
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      'keep-db': { type: 'boolean', default: false },
      env: { type: 'string', multiple: true, default: [] },
      'hang-seconds': { type: 'string', default: '30' },
      'window-seconds': { type: 'string', default: '120' },
      services: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '180' },
      interval: { type: 'string', default: '10' },
      tenants: { type: 'string', default: '3' },
      rate: { type: 'string', default: '4' },
      clients: { type: 'string', default: '4' },
      events: { type: 'string', default: '3000' },
      warmup: { type: 'string', default: '8' },
      'after-503': { type: 'string', default: 'keep' },
      'loki-delay-ms': { type: 'string', default: '800' },
    },
  });
  const scenarios = { slack: slackScenario, replicas: replicasScenario, sigterm: sigtermScenario } as const;
  const name = values.scenario as keyof typeof scenarios | undefined;
  if (!name || !(name in scenarios)) throw new Error(`--scenario must be one of ${Object.keys(scenarios).join(', ')}`);
  const extra = Object.fromEntries((values.env as string[]).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const dbUrl = await freshDatabase(values['database-url']!, 'ad_issue_17_faults');
  out(`machine: ${cpus()[0]?.model} x${cpus().length}, node ${process.version}; load average before ${load()}; database ${new URL(dbUrl).pathname.slice(1)}${Object.keys(extra).length ? `; env ${JSON.stringify(extra)}` : ''}`);
  let pass = false;
  try {
    pass = await scenarios[name](dbUrl, values, extra);
  } finally {
    out(`load average after ${load()}`);
    if (!values['keep-db']) await dropDatabase(dbUrl);
  }
  if (!pass) throw new Error(`scenario ${name}: FAIL (figures above)`);
}
