import { randomUUID } from 'crypto';
import { AddressInfo } from 'net';
import { gzipSync } from 'zlib';
import { ReplayService } from '../src/modules/detection/replay/replay.service';
import { SeriesService } from '../src/modules/detection/series.service';
import { Hostile } from './support/hostile';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

/** Bounded by default so `npm test` stays quick; FUZZ_REQUESTS / FUZZ_SEED widen or vary a run. */
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 15);
const PARALLEL = 6;

interface Route {
  method: string;
  path: string;
}

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  note: string;
}

const ERROR_CODE = /^[A-Z][A-Z_]*$/;

/**
 * What every answer must be: below 500; a 4xx in the error shape (SPEC §4) naming the field when
 * it is a validation error, except the two answers whose shape the API defines otherwise (the
 * /ingest envelope, Loki's plain-text push rejections). Returns the problem, or undefined.
 */
function judge(route: Route, status: number, contentType: string, text: string): string | undefined {
  if (status >= 500) return `status ${status}`;
  if (status < 400) return undefined;
  if (route.path === '/loki/api/v1/push' && contentType.startsWith('text/plain')) return text.trim() ? undefined : 'empty Loki rejection';
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    return `4xx body is not JSON: ${text.slice(0, 100)}`;
  }
  if (route.path === '/ingest' && Array.isArray(body.results)) return undefined;
  if (body.statusCode !== status) return `statusCode ${String(body.statusCode)} != ${status}`;
  if (typeof body.code !== 'string' || !ERROR_CODE.test(body.code)) return 'no code';
  if (typeof body.error !== 'string' || typeof body.message !== 'string') return 'no error/message';
  if (typeof body.requestId !== 'string') return 'no requestId';
  if (body.details !== undefined) {
    const ok = Array.isArray(body.details) && body.details.every((d) => typeof d?.field === 'string' && typeof d?.reason === 'string');
    if (!ok) return 'details not [{field, reason}]';
  }
  if ((body.code === 'VALIDATION_FAILED' || body.code === 'INVALID_BODY') && !(Array.isArray(body.details) && body.details.length)) {
    return `${body.code} without details naming the field`;
  }
  return undefined;
}

describe('Fuzz: hostile requests over every route', () => {
  const [a, b] = [newTenantId('fa'), newTenantId('fb')];
  const [ka, kb] = [newApiKey(), newApiKey()];
  let sut: TestApp;
  let base: string;
  let routes: Route[];
  /** Documented query parameters of each route. */
  const params = new Map<string, string[]>();

  beforeAll(async () => {
    sut = await startTestApp({
      multiTenantEnabled: true,
      defaultTenant: a,
      tenants: [a, b],
      tenantApiKeys: { [a]: [ka], [b]: [kb] },
      rateLimitPerMinute: 1_000_000,
      ingestMaxAgeHours: 168,
      requestBodyMaxBytes: 256 * 1024,
      ingestMaxBytes: 1024 * 1024,
      modelMinTrainingRows: 100_000,
    });
    await new Promise<void>((resolve) => sut.http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(sut.http.address() as AddressInfo).port}`;
    const doc = (await (await fetch(`${base}/docs-json`)).json()) as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => {
          params.set(`${m.toUpperCase()} ${path}`, (ops[m].parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name));
          return { method: m.toUpperCase(), path };
        }),
    );
  });
  afterAll(async () => {
    await sut.app.get(ReplayService).drain();
    await sut.close();
  });

  /** A valid body for the route, to which one fault is then added. */
  function validBody(h: Hostile, route: Route): Record<string, unknown> | undefined {
    const now = Date.now();
    const event = () => ({
      timestamp: new Date(now - h.int(600_000)).toISOString(),
      service: `svc-${h.int(3)}`,
      http: { request: { method: 'GET', path: '/p' }, response: { status_code: 200, bytes: 1000 + h.int(100) } },
      performance: { duration_ms: 50 + h.int(100) },
      user_agent: 'curl',
    });
    switch (route.path) {
      case '/ingest':
        return event();
      case '/loki/api/v1/push':
        return { streams: [{ stream: { app: 'web' }, values: [[`${now}000000`, JSON.stringify(event())]] }] };
      case '/silences':
        return route.method === 'POST' ? { service: 'web', reason: 'maintenance', starts_at: new Date(now).toISOString(), duration_minutes: 5 } : undefined;
      case '/replay':
        return h.chance(0.8) ? { events: [event(), event(), event()], report: true } : { loki: { start: new Date(now - 3600_000).toISOString(), end: new Date(now).toISOString() } };
      default:
        return route.path.includes('feedback') ? { label: 'confirmed' } : undefined;
    }
  }

  function body(h: Hostile, route: Route): { body?: Buffer | string; type?: string; note: string } {
    const roll = h.int(40);
    if (roll === 0) return { body: h.deepText(h.pick([80, 300, 2000, 6000])), type: 'application/json', note: 'deep' };
    if (roll === 1) return { body: '[' + Array.from({ length: h.pick([10, 5000, 40_000]) }, () => '{}').join(',') + ']', type: 'application/json', note: 'array of {}' };
    if (roll === 2) return { body: h.pick(['{"a":', 'nul', '\u0000', '{"a":1}garbage', '"just a string"', '42', 'null', 'true']), type: 'application/json', note: 'not an object' };
    if (roll === 3) return { body: JSON.stringify(h.value()), type: h.pick(['text/plain', 'application/x-protobuf', 'application/x-ndjson', '']), note: 'odd type' };
    if (roll === 4) return { note: 'no body' };
    if (roll === 5) return { body: JSON.stringify(h.value()) ?? 'null', type: 'application/json', note: 'random value' };
    const valid = validBody(h, route);
    let value: unknown = valid;
    if (valid) {
      // One fault in an otherwise valid body: it reaches the deepest layers (services, SQL).
      if (route.path === '/loki/api/v1/push' && h.chance(0.6)) {
        const s = (valid.streams as { stream: Record<string, string>; values: [string, string][] }[])[0];
        if (h.chance(0.3)) s.values[0][0] = h.pick(['1570818238000000000', '-1', 'abc', '99999999999999999999999', `${Date.now() + 86_400_000 * 400}000000`, '0']);
        else s.values[0][1] = h.chance(0.8) ? JSON.stringify(h.mutateOne(JSON.parse(s.values[0][1]))) : h.string();
      } else if (route.path === '/replay' && Array.isArray(valid.events) && h.chance(0.7)) {
        const events = valid.events as Record<string, unknown>[];
        events[h.int(3)] = h.mutateOne(events[0]);
      } else {
        value = h.mutateOne(valid);
      }
      if (route.path === '/ingest' && h.chance(0.3)) value = [validBody(h, route), value];
    } else {
      value = h.value();
    }
    if (route.path === '/ingest' && h.chance(0.1)) {
      const lines = [JSON.stringify(value), h.pick(['{oops', '', '[1]', '"s"']), JSON.stringify(validBody(h, route))];
      return { body: lines.join('\n'), type: 'application/x-ndjson', note: 'ndjson' };
    }
    let text = JSON.stringify(value) ?? '';
    // Numbers JSON.stringify cannot write: past float64, past int8.
    if (h.chance(0.5)) text = text.replace(/"(1e400|10000000000000000000)"/g, '$1');
    return { body: text, type: 'application/json', note: 'one fault' };
  }

  /** Valid query values by parameter name; one of them (or an extra one) is then made hostile. */
  function query(h: Hostile, route: Route): string {
    const names = params.get(`${route.method} ${route.path}`) ?? [];
    const valid: Record<string, string> = { since: new Date(Date.now() - 3600_000).toISOString(), until: new Date().toISOString(), limit: '10', service: 'web', kind: 'event', active: 'true', tenant: a };
    const q = new Map<string, string>();
    for (const n of names) if (valid[n] !== undefined && h.chance(0.5)) q.set(n, encodeURIComponent(valid[n]));
    if (h.chance(0.8)) {
      // The tenant parameter only reaches the guard: mostly fault the others.
      const others = names.filter((n) => n !== 'tenant');
      const name = others.length && h.chance(0.9) ? h.pick(others) : h.pick(['x', 'tenant', 'since', 'cursor']);
      const v = h.forField(name);
      q.set(name, h.chance(0.05) ? '%FF' : h.encode(typeof v === 'string' ? v : (JSON.stringify(v) ?? '')));
    }
    return [...q].map(([k, v]) => `${k}=${v}`).join('&');
  }

  function request(h: Hostile): { route: Route; sent: Sent } {
    const route = h.pick(routes);
    const path = route.path.replace(/\{[^}]+\}/g, () => (h.chance(0.5) ? h.pick(['1', randomUUID()]) : h.pathParam()));
    const qs = query(h, route);
    const headers: Record<string, string> = {};
    const auth = h.int(25);
    if (auth === 0) headers['X-API-Key'] = 'wrong-key-123456';
    else if (auth === 1) headers['X-Tenant'] = b;
    else if (auth === 2) headers['X-Tenant'] = 'nope';
    if (auth !== 3) headers['X-API-Key'] ??= h.chance(0.9) ? ka : kb;
    if (h.chance(0.05)) headers['Idempotency-Key'] = h.pick(['k1', 'x'.repeat(200), 'ü']);
    let sentBody: Buffer | string | undefined;
    let note = 'no body';
    if (route.method !== 'GET') {
      const made = body(h, route);
      note = made.note;
      if (made.type !== undefined && made.type !== '') headers['Content-Type'] = made.type;
      sentBody = made.body;
      if (sentBody !== undefined && h.chance(0.05)) {
        headers['Content-Encoding'] = 'gzip';
        sentBody = h.chance(0.8) ? gzipSync(sentBody) : Buffer.from('not gzip at all');
      }
    }
    return { route, sent: { method: route.method, url: `${base}${path}${qs ? '?' + qs : ''}`, headers, body: sentBody, note } };
  }

  it(`should answer ${REQUESTS} hostile requests (seed ${SEED}) without a 5xx, a dropped connection or a 4xx outside the error shape`, async () => {
    const h = new Hostile(SEED);
    const failures: string[] = [];
    let retrains = 0;
    const statuses = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        sent++;
        let { route, sent: req } = request(h);
        // Training is the one costly route: a few calls cover it.
        while (route.path === '/retrain' && ++retrains > 3) ({ route, sent: req } = request(h));
        let res: Response;
        try {
          res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body });
        } catch (e) {
          failures.push(`${req.method} ${req.url} (${req.note}): connection failed: ${(e as Error).message} ${(e as { cause?: Error }).cause?.message ?? ''}`);
          continue;
        }
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = judge(route, res.status, res.headers.get('content-type') ?? '', text);
        if (problem) failures.push(`${req.method} ${req.url.slice(base.length, base.length + 160)} (${req.note}): ${problem}: ${text.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    await sut.app.get(ReplayService).drain();
    // The background work those requests fed still runs: the series of both tenants close.
    await expect(sut.app.get(SeriesService).closeTenant(a)).resolves.toBeDefined();
    expect(failures.slice(0, 25)).toEqual([]);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  }, 600_000);
});
