import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { parseArgs } from 'util';
import { createWriteStream, mkdirSync, writeFileSync } from 'fs';
import { once } from 'events';
import { join } from 'path';
import { parseRetryAfter } from '../../../common/http/retry-after';
import { DAY_MS, MINUTE_MS, Scenario, ScenarioEvent, buildScenario } from './scenario';
import { FoundIncident, IncidentReport, buildIncidentReport, formatIncidentReport } from './incident-report';

/**
 * `npm run evaluate`: generates a labelled scenario ({@link buildScenario}), sends it through a
 * running service's `POST /ingest` at full speed, waits until the service has judged it (series
 * closed up to the end of the data, incidents settled), reads `GET /incidents` and prints
 * {@link buildIncidentReport}'s report. A client of the HTTP API only: it reads no configuration
 * and touches no database.
 */

export const EVALUATE_USAGE = `usage: npm run evaluate -- [options]

Generates seeded request logs with labelled incidents (latency spike, error burst, slow degradation,
traffic drop, payload change) and benign changes (faster deploy, traffic increase, daily cycle) ending
now, sends them through a running service's POST /ingest at full speed (one request in flight per
tenant, tenants in parallel), waits until the service has processed them and reports per incident
whether it was paged in time, the false incidents per tenant-day, and PASS/FAIL against issue 12.

options:
  --url URL            the service (default http://127.0.0.1:8000)
  --tenants LIST|N     tenant names, comma-separated, or a count N for eval-a, eval-b, … (default 2)
  --key KEY            API key (one tenant, or a key every listed tenant accepts)
  --keys JSON          tenant → API key, e.g. '{"eval-a":"ka","eval-b":"kb"}' (tenants default to its keys)
  --days N             days of data (default 2; with --model at least 2)
  --rate R             mean requests/min per service (default 10)
  --services N         services per tenant (default 3)
  --seed S             integer seed (default 1)
  --model              train a model on day 1: send day 1, wait until it is processed, POST /retrain
                       for each tenant, send the rest and evaluate days 2.. only
  --wait-seconds S     longest wait for the service to catch up after sending (default 600)
  --settle-seconds S   the incidents and anomaly counts must stay unchanged this long (and the
                       incident backlog empty) before the report is made (default 30)
  --allow-existing     send even when the tenants already hold events (results are then unreliable)
  --json               print the structured report (JSON) instead of the text report
  --write-dir DIR      write the scenario instead of sending it, no service needed: DIR/events.ndjson
                       (ingest shape, each event with its tenant) and DIR/labels.json; replay them with
                       npm run replay -- --format ndjson --input DIR/events.ndjson \\
                         --output DIR/detections.ndjson --labels DIR/labels.json
                       for the same report offline (--model does not apply there)
  --help               this text

The server must know the tenants and let the harness in, e.g. with keyless development tenants:
  ENVIRONMENT=development MULTI_TENANT_ENABLED=true TENANTS=eval-a,eval-b EVENT_RETENTION_HOURS=72 npm start
or with keys: TENANT_API_KEYS='{"eval-a":"ka","eval-b":"kb"}' and --keys with the same JSON.
Use tenants that hold no events and no model yet (a fresh database and no MODELS_DIR/<tenant>/model.json,
or new names in TENANTS and --tenants): their watermark must start with this run's data. The data reaches --days back from now, so keep
EVENT_RETENTION_HOURS above 24 × days (72 for the default 2 days): the service refuses live events older
than its retention window (INGEST_MAX_AGE_HOURS unset), and the oldest minutes would be refused. SCHEDULER_ENABLED=false keeps the model as the run sets it (none,
or the day-1 model with --model); otherwise the service trains on its own during the run (the report
names the model each tenant ended with).

Exit status: 0 PASS, 1 FAIL or error, 2 bad options.
`;

/** Options of one run, as parsed from the command line. */
export interface EvaluateOptions {
  url: string;
  tenants: string[];
  /** tenant → API key; a tenant missing here is sent without a key (open development tenant). */
  keys: Map<string, string>;
  days: number;
  rate: number;
  services: number;
  seed: number;
  model: boolean;
  waitSeconds: number;
  settleSeconds: number;
  allowExisting: boolean;
  json: boolean;
  /** Write the scenario (events.ndjson, labels.json) into this folder instead of sending it. */
  writeDir?: string;
}

/** A bad command line; the message names the option. */
export class EvaluateUsageError extends Error {}

/** Events per `POST /ingest` request (below INGEST_MAX_ITEMS' default of 5000). */
export const BATCH_EVENTS = 2000;
const POLL_MS = 2000;
const STABLE_MS = 3000;
const REQUEST_TIMEOUT_MS = 120_000;
const MAX_ATTEMPTS = 8;

/**
 * Parses the command line (`--help` is handled by {@link runEvaluate}).
 * @throws EvaluateUsageError naming the option that is missing, unknown or out of range.
 */
export function parseEvaluateArgs(argv: string[]): EvaluateOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8000' },
        tenants: { type: 'string' },
        key: { type: 'string' },
        keys: { type: 'string' },
        days: { type: 'string', default: '2' },
        rate: { type: 'string', default: '10' },
        services: { type: 'string', default: '3' },
        seed: { type: 'string', default: '1' },
        model: { type: 'boolean', default: false },
        'wait-seconds': { type: 'string', default: '600' },
        'settle-seconds': { type: 'string', default: '30' },
        'allow-existing': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'write-dir': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new EvaluateUsageError((e as Error).message);
  }
  const num = (name: string, ok: (n: number) => boolean, what: string): number => {
    const raw = String(values[name]);
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || !ok(n))
      throw new EvaluateUsageError(`--${name} must be ${what}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const url = String(values.url).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(url))
    throw new EvaluateUsageError(`--url must be an http(s) URL, got ${JSON.stringify(values.url)}`);

  const keys = new Map<string, string>();
  if (values.keys !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(String(values.keys));
    } catch {
      throw new EvaluateUsageError('--keys must be a JSON object of tenant → key');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new EvaluateUsageError('--keys must be a JSON object of tenant → key');
    for (const [t, k] of Object.entries(parsed)) {
      if (typeof k !== 'string' || !k)
        throw new EvaluateUsageError(`--keys: the key of ${t} must be a non-empty string`);
      keys.set(t, k);
    }
  }
  let tenants: string[];
  const t = values.tenants === undefined ? undefined : String(values.tenants).trim();
  if (t === undefined) tenants = keys.size ? [...keys.keys()] : names(2);
  else if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < 1 || n > 26) throw new EvaluateUsageError('--tenants as a count must be 1..26');
    tenants = names(n);
  } else tenants = t.split(',').map((s) => s.trim());
  if (!tenants.length || tenants.some((x) => !/^[A-Za-z0-9_.-]{1,64}$/.test(x)))
    throw new EvaluateUsageError('--tenants must list tenant names ([A-Za-z0-9_.-]) or give a count');
  if (new Set(tenants).size !== tenants.length) throw new EvaluateUsageError('--tenants lists a tenant twice');
  if (values.key !== undefined) {
    if (!values.key) throw new EvaluateUsageError('--key must not be empty');
    for (const x of tenants) if (!keys.has(x)) keys.set(x, String(values.key));
  }

  const model = values.model === true;
  const days = num(
    'days',
    (n) => Number.isInteger(n) && n >= (model ? 2 : 1) && n <= 14,
    model ? 'an integer in 2..14 with --model' : 'an integer in 1..14',
  );
  return {
    url,
    tenants,
    keys,
    days,
    rate: num('rate', (n) => n > 0 && n <= 1000, 'a number in (0, 1000]'),
    services: num('services', (n) => Number.isInteger(n) && n >= 1 && n <= 20, 'an integer in 1..20'),
    seed: num('seed', (n) => Number.isSafeInteger(n), 'an integer'),
    model,
    waitSeconds: num('wait-seconds', (n) => n >= 0 && n <= 86_400, 'seconds in 0..86400'),
    settleSeconds: num('settle-seconds', (n) => n >= 0 && n <= 3600, 'seconds in 0..3600'),
    allowExisting: values['allow-existing'] === true,
    json: values.json === true,
    writeDir: writeDirOf(values['write-dir']),
  };
}

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `eval-${String.fromCharCode(97 + i)}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A failed call to the service; `status` is the HTTP status (0: no answer). */
export class ServiceCallError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * The service's HTTP API, tenant by tenant: every call carries `?tenant=` and the tenant's key (if
 * any). Throttling (429) and unavailability (503) are retried as Retry-After says, network errors
 * and other 5xx with exponential backoff, up to {@link MAX_ATTEMPTS} attempts.
 */
export class EvaluationClient {
  constructor(
    private readonly base: string,
    private readonly keys: Map<string, string>,
  ) {}

  /**
   * One call. Returns the status and parsed JSON body for 2xx and for 207/400 ingest envelopes.
   * @throws ServiceCallError on other 4xx (with the error shape's code and message), and when retries run out.
   */
  async call(
    tenant: string,
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: unknown }> {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${this.base}${path}${sep}tenant=${encodeURIComponent(tenant)}`;
    const key = this.keys.get(tenant);
    const h: Record<string, string> = { Accept: 'application/json', ...headers };
    if (key) h['X-API-Key'] = key;
    let last = '';
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, { method, headers: h, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
        last = `no answer from ${this.base} (${cause})`;
        if (attempt === 1 && /ECONNREFUSED|ENOTFOUND/.test(cause))
          throw new ServiceCallError(`${last}: is the service running? (npm start)`, 0);
        await sleep(Math.min(30_000, 500 * 2 ** attempt));
        continue;
      }
      const text = await res.text();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = text;
      }
      if (res.ok || (path.startsWith('/ingest') && (res.status === 207 || res.status === 400) && isEnvelope(json)))
        return { status: res.status, json };
      const err = json as { code?: string; message?: string } | null;
      last = `${method} ${path} for tenant ${tenant}: ${res.status}${err?.code ? ` ${err.code}` : ''}${err?.message ? ` (${err.message})` : ''}`;
      if (res.status === 429 || res.status === 503) {
        await sleep(parseRetryAfter(res.headers.get('retry-after'), 60_000) ?? Math.min(30_000, 500 * 2 ** attempt));
        continue;
      }
      if (res.status >= 500) {
        await sleep(Math.min(30_000, 500 * 2 ** attempt));
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        last +=
          ': the tenant must be enabled on the server (TENANTS) and either open (ENVIRONMENT=development, no key) or reached with its key (--key/--keys)';
      }
      throw new ServiceCallError(last, res.status);
    }
    throw new ServiceCallError(`${last} (gave up after ${MAX_ATTEMPTS} attempts)`, 0);
  }

  /** `GET /metrics` of the tenant. */
  async metrics(tenant: string): Promise<Record<string, unknown>> {
    return (await this.call(tenant, 'GET', '/metrics')).json as Record<string, unknown>;
  }

  /** Every incident of the tenant (all pages of `GET /incidents`), with the tenant filled in. */
  async incidents(tenant: string): Promise<FoundIncident[]> {
    const all: FoundIncident[] = [];
    let cursor: string | null = null;
    do {
      const path: string = `/incidents?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = (await this.call(tenant, 'GET', path)).json as {
        items?: FoundIncident[];
        nextCursor?: string | null;
      };
      if (!Array.isArray(page?.items))
        throw new ServiceCallError(`GET /incidents for tenant ${tenant}: no items list in the answer`, 200);
      for (const i of page.items) all.push({ ...i, tenant });
      cursor = page.nextCursor ?? null;
    } while (cursor);
    return all;
  }
}

function isEnvelope(json: unknown): json is IngestEnvelope {
  return typeof json === 'object' && json !== null && typeof (json as IngestEnvelope).accepted === 'number';
}

interface IngestEnvelope {
  accepted: number;
  rejected: number;
  results?: { status: string; errors?: { field: string; reason: string }[] }[];
}

/** What was sent for one tenant. */
interface SendStats {
  tenant: string;
  total: number;
  sent: number;
  accepted: number;
  rejected: number;
  requests: number;
  firstRejection: string | null;
}

/**
 * Sends one tenant's events in time order, one request in flight: the series watermark follows the
 * newest event time, so a later batch must never overtake an earlier one.
 */
class TenantSender {
  readonly stats: SendStats;
  private readonly events: Iterator<ScenarioEvent>;
  private pending: ScenarioEvent | null = null;

  constructor(
    private readonly client: EvaluationClient,
    readonly tenant: string,
    scenario: Scenario,
    total: number,
    private readonly runId: string,
    private readonly onProgress: (s: SendStats) => void,
  ) {
    this.events = scenario.events(tenant);
    this.stats = { tenant, total, sent: 0, accepted: 0, rejected: 0, requests: 0, firstRejection: null };
  }

  /** Sends the events before `until` (epoch ms; all when omitted), in batches of {@link BATCH_EVENTS}. */
  async sendUntil(until = Infinity): Promise<void> {
    let batch: string[] = [];
    for (;;) {
      const e = this.pending ?? this.events.next().value;
      this.pending = null;
      if (!e) break;
      if (Date.parse(e.timestamp) >= until) {
        this.pending = e;
        break;
      }
      const { tenant: _tenant, ...event } = e;
      batch.push(JSON.stringify(event));
      if (batch.length >= BATCH_EVENTS) {
        await this.post(batch);
        batch = [];
      }
    }
    if (batch.length) await this.post(batch);
  }

  private async post(lines: string[]): Promise<void> {
    const n = this.stats.requests++;
    // The key makes a retried batch store nothing twice.
    const { json } = await this.client.call(this.tenant, 'POST', '/ingest', lines.join('\n') + '\n', {
      'Content-Type': 'application/x-ndjson',
      'Idempotency-Key': `${this.runId}-${this.tenant}-${n}`,
    });
    const env = json as IngestEnvelope;
    this.stats.sent += lines.length;
    this.stats.accepted += env.accepted;
    this.stats.rejected += env.rejected;
    if (env.rejected && !this.stats.firstRejection) {
      const r = env.results?.find((x) => x.status === 'rejected');
      this.stats.firstRejection = JSON.stringify(r?.errors ?? env);
    }
    this.onProgress(this.stats);
  }
}

/** Progress on a terminal (cli-progress bars on stderr), a plain line every 10 s otherwise. */
class Progress {
  private readonly bars = new Map<string, SingleBar>();
  private readonly multi: MultiBar | null;
  private readonly lastLine = new Map<string, number>();

  constructor(
    private readonly err: EvaluateIo['err'],
    private readonly quiet: boolean,
  ) {
    this.multi =
      err.isTTY && !quiet
        ? new MultiBar(
            {
              stream: err,
              format: '{tenant} [{bar}] {percentage}% {value}/{total} events | {rate} ev/s | ETA {eta_formatted}',
              hideCursor: false, // a run stopped with Ctrl-C must not leave the cursor hidden
              clearOnComplete: false,
            },
            Presets.shades_classic,
          )
        : null;
  }

  start(stats: SendStats[]): void {
    if (!this.multi) return;
    for (const s of stats)
      this.bars.set(s.tenant, this.multi.create(s.total, s.sent, { tenant: s.tenant.padEnd(10), rate: 0 }));
  }

  update(s: SendStats, started: number): void {
    const rate = Math.round(s.sent / Math.max(0.001, (Date.now() - started) / 1000));
    if (this.multi) {
      this.bars.get(s.tenant)?.update(s.sent, { tenant: s.tenant.padEnd(10), rate });
      return;
    }
    if (Date.now() - (this.lastLine.get(s.tenant) ?? 0) >= 10_000 && !this.quiet) {
      this.lastLine.set(s.tenant, Date.now());
      this.err.write(`${s.tenant}: ${s.sent}/${s.total} events sent (${rate} ev/s)\n`);
    }
  }

  log(line: string): void {
    if (this.multi) this.multi.log(line + '\n');
    else this.err.write(line + '\n');
  }

  stop(): void {
    this.multi?.stop();
  }
}

/**
 * Waits until every tenant's series are closed and judged up to `target` (epoch ms): by
 * `series_closed_until` of `GET /metrics` when the service reports it, else by `series_watermark`
 * (which only says how far closing may go). Returns false when `deadline` passed first.
 */
async function waitForWatermark(
  client: EvaluationClient,
  tenants: string[],
  target: number,
  deadline: number,
  log: (s: string) => void,
  pollMs: number,
): Promise<boolean> {
  const left = new Set(tenants);
  let warned = false;
  for (;;) {
    for (const t of [...left]) {
      const m = await client.metrics(t);
      const field =
        'series_closed_until' in m ? 'series_closed_until' : 'series_watermark' in m ? 'series_watermark' : null;
      if (!field) {
        if (!warned)
          log(
            'the service reports no series_closed_until nor series_watermark in GET /metrics: waiting for incidents to settle only',
          );
        warned = true;
        left.delete(t);
        continue;
      }
      const v = m[field];
      if (typeof v === 'string' && Date.parse(v) >= target) left.delete(t);
    }
    if (!left.size) return true;
    if (Date.now() >= deadline) {
      log(
        `still waiting for ${[...left].join(', ')} to be closed up to ${new Date(target).toISOString()}; going on after the wait limit`,
      );
      return false;
    }
    await sleep(pollMs);
  }
}

/**
 * Reads every tenant's incidents (and /metrics) every `pollMs` until, for `settleMs`, neither the
 * incidents nor any tenant's `anomalies_total` changed and no tenant reports an `incident_backlog`
 * above 0 (when the service reports one) — or until `deadline` (epoch ms) passes.
 */
async function settledIncidents(
  client: EvaluationClient,
  tenants: string[],
  deadline: number,
  pollMs: number,
  settleMs: number,
): Promise<{ incidents: FoundIncident[]; settled: boolean }> {
  const key = (xs: FoundIncident[], metrics: Record<string, unknown>[]) =>
    JSON.stringify([
      xs
        .map((i) => [i.id, i.started_at, i.detected_at, i.ended_at, i.severity, i.signals.map((s) => s.signal)])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      metrics.map((m) => m.anomalies_total ?? null),
    ]);
  let prev: string | null = null;
  let since = Date.now();
  for (;;) {
    const incidents = (await Promise.all(tenants.map((t) => client.incidents(t)))).flat();
    const metrics = await Promise.all(tenants.map((t) => client.metrics(t)));
    const backlog = metrics.some((m) => typeof m.incident_backlog === 'number' && m.incident_backlog > 0);
    const k = key(incidents, metrics);
    if (backlog || k !== prev) {
      prev = backlog ? null : k;
      since = Date.now();
    } else if (Date.now() - since >= settleMs) return { incidents, settled: true };
    if (Date.now() >= deadline) return { incidents, settled: false };
    await sleep(pollMs);
  }
}

/** Where a run writes, and (for tests) its clock and poll intervals in ms. */
export interface EvaluateIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
  /** The data ends at now(), rounded down to the minute. Default Date.now. */
  now?: () => number;
  /** Between two reads of the watermark (default 2 s) and of the incidents (default 3 s). */
  pollMs?: number;
  stableMs?: number;
}

/** The structured result of a run (`--json`). */
export interface EvaluateResult {
  scenario: {
    tenants: string[];
    days: number;
    rate: number;
    servicesPerTenant: number;
    seed: number;
    model: boolean;
    start: string;
    end: string;
  };
  send: {
    events: number;
    accepted: number;
    rejected: number;
    requests: number;
    seconds: number;
    eventsPerSecond: number;
  };
  models: { tenant: string; version: number | null; status: string }[];
  caughtUp: boolean;
  /** The incidents had stopped changing before the wait ran out. */
  settled: boolean;
  /** active_model_version of each tenant at the end (null: none). */
  modelsAtEnd: { tenant: string; version: number | null }[];
  report: IncidentReport;
}

/**
 * Runs the harness with `argv` (the arguments after `evaluate`); writes the report to stdout and
 * progress to stderr. Returns the exit status: 0 when the acceptance passes, 1 when it fails, 2 for
 * bad options (usage on stderr); `--help` prints the usage on stdout and returns 0.
 * @throws ServiceCallError when the service cannot be reached, refuses the tenants, or keeps failing.
 */
export async function runEvaluate(
  argv: string[],
  io: EvaluateIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const now = io.now ?? Date.now;
  const timing = { pollMs: io.pollMs ?? POLL_MS, stableMs: io.stableMs ?? STABLE_MS };
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out.write(EVALUATE_USAGE);
    return 0;
  }
  let o: EvaluateOptions;
  try {
    o = parseEvaluateArgs(argv);
  } catch (e) {
    if (!(e instanceof EvaluateUsageError)) throw e;
    io.err.write(`evaluate: ${e.message} (see npm run evaluate -- --help)\n`);
    return 2;
  }
  if (o.writeDir !== undefined) return writeScenario(o, now(), io);
  const client = new EvaluationClient(o.url, o.keys);
  const progress = new Progress(io.err, o.json && !io.err.isTTY);
  const say = (s: string) => progress.log(s);

  for (const t of o.tenants) {
    const m = await client.metrics(t);
    const stored = Number(m.events_total ?? 0);
    if (stored > 0 && !o.allowExisting) {
      throw new ServiceCallError(
        `tenant ${t} already holds ${stored} events: evaluate on tenants without events (a fresh database or new names in TENANTS and --tenants), or pass --allow-existing`,
        0,
      );
    }
    if (typeof m.active_model_version === 'number' && !o.allowExisting) {
      throw new ServiceCallError(
        `tenant ${t} already has a model (v${m.active_model_version}; the service imports MODELS_DIR/${t}/model.json at start): ` +
          'evaluate on tenants without a model (--model trains one on day 1), or pass --allow-existing',
        0,
      );
    }
  }

  const scenario = buildScenario({
    tenants: o.tenants,
    servicesPerTenant: o.services,
    days: o.days,
    rate: o.rate,
    seed: o.seed,
    end: now(),
    firstIncidentDay: o.model ? 1 : 0,
  });
  say(
    `scenario: ${o.tenants.length} tenants × ${o.services} services, ${o.days} days at ${o.rate} req/min, seed ${o.seed}, ${scenario.labels.length} labels; data ${new Date(scenario.start).toISOString()} .. ${new Date(scenario.end).toISOString()}`,
  );
  const runId = `eval-${scenario.end.toString(36)}-${o.seed}`;
  let started = Date.now();
  const senders = o.tenants.map(
    (t) => new TenantSender(client, t, scenario, scenario.countEvents(t), runId, (s) => progress.update(s, started)),
  );
  progress.start(senders.map((s) => s.stats));
  started = Date.now();
  let sendingMs = 0;
  const models: EvaluateResult['models'] = [];
  const deadlineFrom = (t: number) => t + o.waitSeconds * 1000;

  try {
    if (o.model) {
      const dayOneEnd = scenario.start + DAY_MS;
      await Promise.all(senders.map((s) => s.sendUntil(dayOneEnd)));
      sendingMs += Date.now() - started;
      say('day 1 sent; waiting for it to be processed before training');
      await waitForWatermark(
        client,
        o.tenants,
        dayOneEnd - 3 * MINUTE_MS,
        deadlineFrom(Date.now()),
        say,
        timing.pollMs,
      );
      for (const t of o.tenants) {
        try {
          const r = (await client.call(t, 'POST', '/retrain')).json as { version?: number; status?: string };
          models.push({ tenant: t, version: r?.version ?? null, status: r?.status ?? 'unknown' });
        } catch (e) {
          // A tenant left without a model is still evaluated (on its cold-start baselines); the report says so.
          if (!(e instanceof ServiceCallError) || e.status === 0) throw e;
          models.push({ tenant: t, version: null, status: `failed: ${e.message}` });
        }
        const m = models[models.length - 1];
        say(`${t}: model ${m.version === null ? '-' : `v${m.version}`} ${m.status}`);
      }
      const resumed = Date.now();
      await Promise.all(senders.map((s) => s.sendUntil()));
      sendingMs += Date.now() - resumed;
    } else {
      await Promise.all(senders.map((s) => s.sendUntil()));
      sendingMs = Date.now() - started;
    }
  } finally {
    progress.stop();
  }
  const stats = senders.map((s) => s.stats);
  const events = stats.reduce((a, s) => a + s.sent, 0);
  const rejected = stats.reduce((a, s) => a + s.rejected, 0);
  for (const s of stats)
    if (s.firstRejection) io.err.write(`${s.tenant}: ${s.rejected} events rejected, e.g. ${s.firstRejection}\n`);
  io.err.write(
    `sent ${events} events in ${(sendingMs / 1000).toFixed(1)} s (${Math.round(events / Math.max(0.001, sendingMs / 1000))} events/s); waiting for processing\n`,
  );

  const deadline = deadlineFrom(Date.now());
  const caughtUp = await waitForWatermark(
    client,
    o.tenants,
    scenario.end - 3 * MINUTE_MS,
    deadline,
    (s) => io.err.write(s + '\n'),
    timing.pollMs,
  );
  const { incidents, settled } = await settledIncidents(
    client,
    o.tenants,
    Math.max(deadline, Date.now() + o.settleSeconds * 1000 + 30_000),
    timing.stableMs,
    o.settleSeconds * 1000,
  );
  if (!settled)
    io.err.write('note: the incidents were still changing when the wait ran out; the report may miss some\n');
  const modelsAtEnd: EvaluateResult['modelsAtEnd'] = [];
  for (const t of o.tenants) {
    const v = (await client.metrics(t)).active_model_version;
    modelsAtEnd.push({ tenant: t, version: typeof v === 'number' ? v : null });
  }
  const expected = (t: string) => (o.model ? (models.find((m) => m.tenant === t)?.version ?? null) : null);
  const drifted = modelsAtEnd.filter((m) => m.version !== expected(m.tenant));
  if (drifted.length) {
    io.err.write(
      `note: the service changed models during the run (${drifted.map((m) => `${m.tenant} ended with ${m.version === null ? 'none' : `v${m.version}`}`).join(', ')}); ` +
        'start it with SCHEDULER_ENABLED=false to evaluate exactly ' +
        (o.model ? 'the day-1 model\n' : 'without a model\n'),
    );
  }
  const report = buildIncidentReport(scenario.labels, incidents, {
    tenants: o.tenants,
    from: o.model ? scenario.start + DAY_MS : scenario.start,
    to: scenario.end,
  });
  const result: EvaluateResult = {
    scenario: {
      tenants: o.tenants,
      days: o.days,
      rate: o.rate,
      servicesPerTenant: o.services,
      seed: o.seed,
      model: o.model,
      start: new Date(scenario.start).toISOString(),
      end: new Date(scenario.end).toISOString(),
    },
    send: {
      events,
      accepted: stats.reduce((a, s) => a + s.accepted, 0),
      rejected,
      requests: stats.reduce((a, s) => a + s.requests, 0),
      seconds: Math.round(sendingMs / 100) / 10,
      eventsPerSecond: Math.round(events / Math.max(0.001, sendingMs / 1000)),
    },
    models,
    caughtUp,
    settled,
    modelsAtEnd,
    report,
  };
  if (o.json) io.out.write(JSON.stringify(result, null, 2) + '\n');
  else {
    io.out.write(
      `evaluate --seed ${o.seed} --rate ${o.rate} --days ${o.days}${o.model ? ' --model' : ''}: ${o.tenants.length} tenants × ${o.services} services\n` +
        `sent ${events} events (${rejected} rejected) in ${result.send.seconds} s: ${result.send.eventsPerSecond} events/s` +
        (models.length ? `; models ${models.map((m) => `${m.tenant} v${m.version} ${m.status}`).join(', ')}` : '') +
        (caughtUp ? '' : '; the service had not caught up within --wait-seconds') +
        `\nmodels at the end: ${modelsAtEnd.map((m) => `${m.tenant} ${m.version === null ? 'none' : `v${m.version}`}`).join(', ')}` +
        `\nincidents found: ${incidents.length}\n\n`,
    );
    io.out.write(formatIncidentReport(report));
  }
  return report.acceptance.pass ? 0 : 1;
}

function writeDirOf(v: string | boolean | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new EvaluateUsageError('--write-dir must name a folder');
  return v;
}

/**
 * `--write-dir`: writes the run's scenario (the same seed, tenants, rate, days and end as a run
 * through the API) as `events.ndjson` (one event per line, ingest shape, with `tenant`) and
 * `labels.json` (the labelled changes, ISO 8601 times), for `npm run replay -- --format ndjson
 * --labels …` or any other tool. Returns 0.
 * @throws the fs error when the folder cannot be written.
 */
async function writeScenario(o: EvaluateOptions, end: number, io: EvaluateIo): Promise<number> {
  const dir = o.writeDir!;
  mkdirSync(dir, { recursive: true });
  const scenario = buildScenario({ tenants: o.tenants, servicesPerTenant: o.services, days: o.days, rate: o.rate, seed: o.seed, end, firstIncidentDay: 0 });
  const eventsPath = join(dir, 'events.ndjson');
  const out = createWriteStream(eventsPath);
  let n = 0;
  for (const tenant of scenario.tenants) {
    let chunk = '';
    for (const e of scenario.events(tenant)) {
      chunk += JSON.stringify(e) + '\n';
      n++;
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    if (chunk) out.write(chunk);
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  const labels = scenario.labels.map((l) => ({ ...l, start: new Date(l.start).toISOString(), end: new Date(l.end).toISOString() }));
  writeFileSync(join(dir, 'labels.json'), JSON.stringify(labels, null, 2) + '\n');
  io.out.write(`wrote ${n} events to ${eventsPath} and ${labels.length} labels to ${join(dir, 'labels.json')}\n`);
  return 0;
}
