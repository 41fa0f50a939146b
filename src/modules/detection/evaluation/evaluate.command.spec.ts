import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';
import { Writable } from 'stream';
import { EvaluateUsageError, ServiceCallError, parseEvaluateArgs, runEvaluate } from './evaluate.command';
import { DAY_MS, MINUTE_MS, buildScenario } from './scenario';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 30);

/** Collects what a run writes. */
class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

interface Received {
  tenant: string;
  at: number;
  kind: 'ingest' | 'retrain';
  contentType?: string;
  key?: string;
  apiKey?: string;
  times?: number[];
}

/**
 * A small real HTTP server speaking the parts of the service's API the harness uses: /metrics
 * (events_total, series_watermark = newest event − 2 min), /ingest (NDJSON envelope), /retrain,
 * /incidents (cursor paging, two per page). It records what arrives and how many ingest requests
 * of a tenant were in flight at once.
 */
class FakeService {
  server!: Server;
  url = '';
  received: Received[] = [];
  newest = new Map<string, number>();
  inFlight = new Map<string, number>();
  maxInFlight = 0;
  throttleFirst = 0;
  stored = 0;
  status401 = false;
  model = new Map<string, number>();
  /** Models the service "trains on its own" when a tenant's first batch arrives. */
  trainsOnIngest = new Map<string, number>();
  /** /metrics reports an incident backlog (and /incidents nothing) for this many more reads. */
  backlogReads = 0;
  /** When set, /metrics reports series_closed_until, lagging (null) for this many more reads after the data is in. */
  closedLagReads: number | null = null;
  incidents: (tenant: string) => object[] = () => [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const tenant = url.searchParams.get('tenant') ?? '';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(value));
    };
    if (this.status401) return json(401, { statusCode: 401, code: 'UNAUTHORIZED', message: 'API key required' });
    if (url.pathname === '/metrics') {
      const n = this.newest.get(tenant);
      if (this.backlogReads > 0) this.backlogReads--;
      const closed: Record<string, unknown> = {};
      if (this.closedLagReads !== null) {
        if (this.closedLagReads > 0) this.closedLagReads--;
        closed.series_closed_until =
          this.closedLagReads > 0 || n === undefined ? null : new Date(n - 2 * MINUTE_MS).toISOString();
      }
      return json(200, {
        tenant,
        incident_backlog: this.backlogReads > 0 ? 7 : 0,
        ...closed,
        active_model_version: this.model.get(tenant) ?? null,
        events_total: this.stored,
        series_watermark: n === undefined ? null : new Date(n - 2 * MINUTE_MS).toISOString(),
      });
    }
    if (url.pathname === '/retrain' && req.method === 'POST') {
      this.received.push({ tenant, at: Date.now(), kind: 'retrain' });
      this.model.set(tenant, 1);
      return json(200, { version: 1, status: 'active', stats: {} });
    }
    if (url.pathname === '/ingest' && req.method === 'POST') {
      if (this.throttleFirst > 0) {
        this.throttleFirst--;
        return json(429, { statusCode: 429, code: 'RATE_LIMITED', message: 'slow down' }, { 'Retry-After': '0' });
      }
      const own = this.trainsOnIngest.get(tenant);
      if (own !== undefined) this.model.set(tenant, own);
      const now = (this.inFlight.get(tenant) ?? 0) + 1;
      this.inFlight.set(tenant, now);
      this.maxInFlight = Math.max(this.maxInFlight, now);
      await new Promise((r) => setTimeout(r, 5));
      const times = body
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const e = JSON.parse(l) as { timestamp: string; tenant?: string };
          if (e.tenant !== undefined) throw new Error('the tenant field must not be sent');
          return Date.parse(e.timestamp);
        });
      this.received.push({
        tenant,
        at: Date.now(),
        kind: 'ingest',
        contentType: req.headers['content-type'],
        key: req.headers['idempotency-key'] as string,
        apiKey: req.headers['x-api-key'] as string | undefined,
        times,
      });
      this.newest.set(tenant, Math.max(this.newest.get(tenant) ?? -Infinity, ...times));
      this.inFlight.set(tenant, now - 1);
      return json(200, { accepted: times.length, rejected: 0, results: [] });
    }
    if (url.pathname === '/incidents') {
      const all = this.backlogReads > 0 || (this.closedLagReads ?? 0) > 0 ? [] : this.incidents(tenant);
      const from = Number(url.searchParams.get('cursor') ?? 0);
      return json(200, {
        items: all.slice(from, from + 2),
        nextCursor: from + 2 < all.length ? String(from + 2) : null,
      });
    }
    json(404, { statusCode: 404, code: 'NOT_FOUND', message: 'no such route' });
  }
}

const run = async (argv: string[]) => {
  const out = new Sink();
  const err = new Sink();
  const code = await runEvaluate([...argv, '--settle-seconds', '0.05'], {
    out,
    err,
    now: () => NOW,
    pollMs: 5,
    stableMs: 20,
  });
  return { code, out: out.text, err: err.text };
};

/** Incidents exactly at the labels: started at the onset, detected a minute later, ended 5 min after the label. */
const incidentsAt =
  (labels: { tenant: string; service: string; start: number; end: number; benign: boolean }[]) => (tenant: string) =>
    labels
      .filter((l) => l.tenant === tenant && !l.benign)
      .map((l, i) => ({
        id: `${tenant}-${i}`,
        service: l.service,
        status: 'resolved',
        severity: 'critical',
        direction: 'up',
        started_at: new Date(l.start).toISOString(),
        detected_at: new Date(l.start + MINUTE_MS).toISOString(),
        ended_at: new Date(l.end + 5 * MINUTE_MS).toISOString(),
        signals: [{ signal: 'latency' }],
        anomaly_count: 3,
      }));

describe(runEvaluate.name, () => {
  let sut: FakeService;

  beforeEach(async () => {
    sut = new FakeService();
    await sut.start();
  });

  afterEach(() => sut.stop());

  it('should print the usage for --help and refuse a bad option with status 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('MULTI_TENANT_ENABLED=true TENANTS=eval-a,eval-b');
    const bad = await run(['--days', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--days');
  });

  it('should send every event in time order, in NDJSON batches of at most 2000, one request in flight per tenant', async () => {
    const scenario = buildScenario({ days: 1, rate: 2, seed: 5, end: NOW });
    sut.incidents = incidentsAt(scenario.labels);
    sut.throttleFirst = 2;
    const r = await run(['--url', sut.url, '--days', '1', '--rate', '2', '--seed', '5']);
    const ingests = sut.received.filter((x) => x.kind === 'ingest');
    for (const tenant of scenario.tenants) {
      const times = ingests.filter((x) => x.tenant === tenant).flatMap((x) => x.times!);
      expect(times).toHaveLength(scenario.countEvents(tenant));
      expect(times.every((t, i) => i === 0 || t >= times[i - 1])).toBe(true);
    }
    expect(ingests.every((x) => x.times!.length <= 2000 && x.contentType === 'application/x-ndjson')).toBe(true);
    expect(new Set(ingests.map((x) => x.key)).size).toBe(ingests.length);
    expect(sut.maxInFlight).toBe(1);
    expect(r.code).toBe(0);
    expect(r.out).toContain('RESULT: PASS');
    expect(r.out).toMatch(/sent \d+ events \(0 rejected\)/);
  });

  it('should wait for the incident backlog to drain before reading the incidents', async () => {
    const scenario = buildScenario({ days: 1, rate: 1, seed: 5, end: NOW });
    sut.incidents = incidentsAt(scenario.labels);
    const sending = run(['--url', sut.url, '--days', '1', '--rate', '1', '--seed', '5']);
    sut.backlogReads = 40;
    const r = await sending;
    expect(sut.backlogReads).toBe(0);
    expect(r.out).toContain('RESULT: PASS');
  });

  it('should wait for series_closed_until rather than the watermark when the service reports it', async () => {
    const scenario = buildScenario({ days: 1, rate: 1, seed: 5, end: NOW });
    sut.incidents = incidentsAt(scenario.labels);
    const sending = run(['--url', sut.url, '--days', '1', '--rate', '1', '--seed', '5', '--settle-seconds', '0']);
    sut.closedLagReads = 30;
    const r = await sending;
    expect(sut.closedLagReads).toBe(0);
    expect(r.out).toContain('RESULT: PASS');
  });

  it('should fail when nothing was paged, and report every label as missed', async () => {
    const r = await run(['--url', sut.url, '--days', '1', '--rate', '2', '--seed', '5', '--json']);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.out) as { report: { outcomes: { paged: boolean }[]; acceptance: { pass: boolean } } };
    expect(result.report.outcomes).toHaveLength(2 * 5);
    expect(result.report.outcomes.every((o) => !o.paged)).toBe(true);
    expect(result.report.acceptance.pass).toBe(false);
  });

  it('should say so when the service trained a model of its own during a run without one', async () => {
    sut.trainsOnIngest.set('eval-b', 4);
    const r = await run(['--url', sut.url, '--days', '1', '--rate', '1', '--seed', '5']);
    expect(r.out).toContain('models at the end: eval-a none, eval-b v4');
    expect(r.err).toContain('SCHEDULER_ENABLED=false');
  });

  it('should train after day 1 is in and before day 2 is sent with --model, and evaluate day 2 only', async () => {
    const scenario = buildScenario({ days: 2, rate: 2, seed: 9, end: NOW, firstIncidentDay: 1, tenants: ['t1', 't2'] });
    sut.incidents = incidentsAt(scenario.labels);
    const r = await run([
      '--url',
      sut.url,
      '--days',
      '2',
      '--rate',
      '2',
      '--seed',
      '9',
      '--model',
      '--tenants',
      't1,t2',
      '--json',
    ]);
    const retrains = sut.received.filter((x) => x.kind === 'retrain');
    expect(retrains.map((x) => x.tenant).sort()).toEqual(['t1', 't2']);
    const dayTwo = scenario.start + DAY_MS;
    const firstRetrain = sut.received.indexOf(retrains[0]);
    const lastRetrain = sut.received.indexOf(retrains[1]);
    sut.received.forEach((x, i) => {
      if (x.kind !== 'ingest') return;
      if (i < firstRetrain) expect(Math.max(...x.times!)).toBeLessThan(dayTwo);
      if (i > lastRetrain) expect(Math.min(...x.times!)).toBeGreaterThanOrEqual(dayTwo);
    });
    const result = JSON.parse(r.out) as {
      models: { status: string }[];
      modelsAtEnd: { version: number | null }[];
      report: { period: { from: string }; acceptance: { pass: boolean } };
    };
    expect(result.models.map((m) => m.status)).toEqual(['active', 'active']);
    expect(result.modelsAtEnd.map((m) => m.version)).toEqual([1, 1]);
    expect(r.err).not.toContain('changed models');
    expect(result.report.period.from).toBe(new Date(dayTwo).toISOString());
    expect(result.report.acceptance.pass).toBe(true);
    expect(r.code).toBe(0);
  });

  it('should refuse tenants that already hold events unless told to go on', async () => {
    sut.stored = 10;
    await expect(run(['--url', sut.url, '--days', '1', '--rate', '1'])).rejects.toThrow(/already holds 10 events/);
    const r = await run(['--url', sut.url, '--days', '1', '--rate', '1', '--allow-existing']);
    expect(r.code).toBe(1);
  });

  it('should refuse tenants that already have a model unless told to go on', async () => {
    sut.model.set('eval-a', 2);
    await expect(run(['--url', sut.url, '--days', '1', '--rate', '1'])).rejects.toThrow(/already has a model \(v2/);
    expect(sut.received).toHaveLength(0);
  });

  it('should send the API keys and explain a refusal', async () => {
    const keys = JSON.stringify({ 'eval-a': 'ka' });
    const scenario = buildScenario({ days: 1, rate: 1, seed: 1, end: NOW, tenants: ['eval-a'] });
    sut.incidents = incidentsAt(scenario.labels);
    expect((await run(['--url', sut.url, '--days', '1', '--rate', '1', '--keys', keys])).code).toBe(0);
    expect(sut.received.every((x) => x.kind !== 'ingest' || x.apiKey === 'ka')).toBe(true);
    sut.status401 = true;
    const refused = run(['--url', sut.url, '--days', '1', '--rate', '1', '--keys', keys]);
    await expect(refused).rejects.toThrow(ServiceCallError);
    await expect(refused).rejects.toThrow(/TENANTS/);
  });
});

describe(parseEvaluateArgs.name, () => {
  it('should default to two tenants, 2 days at 10 req/min on the local service', () => {
    expect(parseEvaluateArgs([])).toMatchObject({
      url: 'http://127.0.0.1:8000',
      tenants: ['eval-a', 'eval-b'],
      days: 2,
      rate: 10,
      services: 3,
      seed: 1,
      model: false,
      waitSeconds: 600,
      settleSeconds: 30,
    });
  });

  it('should take tenants from --keys, a count or a list, and one --key for all', () => {
    expect(parseEvaluateArgs(['--keys', '{"x":"kx","y":"ky"}']).tenants).toEqual(['x', 'y']);
    expect(parseEvaluateArgs(['--tenants', '3']).tenants).toEqual(['eval-a', 'eval-b', 'eval-c']);
    const o = parseEvaluateArgs(['--tenants', 'p, q', '--key', 'k']);
    expect(o.tenants).toEqual(['p', 'q']);
    expect([...o.keys]).toEqual([
      ['p', 'k'],
      ['q', 'k'],
    ]);
  });

  it('should name the option that is wrong', () => {
    expect(() => parseEvaluateArgs(['--model', '--days', '1'])).toThrow(
      /--days must be an integer in 2\.\.14 with --model/,
    );
    expect(() => parseEvaluateArgs(['--rate', '0'])).toThrow(/--rate/);
    expect(() => parseEvaluateArgs(['--keys', '[1]'])).toThrow(/--keys/);
    expect(() => parseEvaluateArgs(['--tenants', 'a,a'])).toThrow(/twice/);
    expect(() => parseEvaluateArgs(['--url', 'ftp://x'])).toThrow(/--url/);
    expect(() => parseEvaluateArgs(['--nope'])).toThrow(EvaluateUsageError);
  });
});
