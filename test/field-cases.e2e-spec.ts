import request from 'supertest';
import { AppConfig } from '../src/config/app-config';
import { SeriesService } from '../src/modules/detection/series.service';
import { EventRepository, EventRow } from '../src/modules/store/event.repository';
import { newEventId } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

// The field cases of issue 15 (cases 02, 02b, 03, 06, 07): each right answer as a test, on the
// default accepted time window (not the widened one the fixture-dated specs use).
describe('Field cases: values storage cannot hold, and event times outside the window', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  const defaults = new AppConfig();
  const post = (path: string, body: unknown) => request(sut.http).post(path).set('X-API-Key', key).send(body as object);
  const count = async (sql: string): Promise<number> => (await sut.database.dataSource.query(sql, [t]))[0].n;
  const now = () => new Date().toISOString();

  beforeAll(async () => {
    sut = await startTestApp({
      defaultTenant: t,
      tenants: [t],
      tenantApiKeys: { [t]: [key] },
      ingestMaxAgeHours: defaults.ingestMaxAgeHours,
      ingestFutureGraceSeconds: defaults.ingestFutureGraceSeconds,
      seriesCloseIntervalSeconds: 0,
    });
  });
  afterAll(() => sut.close());

  it('case 02: should store the clean event and reject the one with a NUL on its own (207, naming the field)', async () => {
    const res = await post('/ingest', [
      { timestamp: now(), service: 'web', duration_ms: 120, status_code: 200, user_agent: 'curl\u0000x' },
      { timestamp: now(), service: 'web', duration_ms: 130, status_code: 200 },
    ]).expect(207);
    expect(res.body.results[0]).toEqual({ index: 0, status: 'rejected', errors: [{ field: 'user_agent', reason: expect.stringContaining('NUL') }] });
    expect(res.body.results[1]).toMatchObject({ index: 1, status: 'accepted' });
    const stored = await sut.database.dataSource.query(`SELECT id FROM events WHERE tenant_id = $1 AND id = $2`, [t, res.body.results[1].id]);
    expect(stored).toHaveLength(1);
  });

  it('case 02: should answer a Loki push with a NUL line 400 naming the entry, storing the clean line', async () => {
    const before = await count(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1 AND source = 'loki-push'`);
    const ns = `${Date.now()}000000`;
    const line = (msg: string) => JSON.stringify({ duration_ms: 100, msg });
    const res = await post('/loki/api/v1/push', { streams: [{ stream: { app: 'web' }, values: [[ns, line('a\u0000b')], [ns.replace(/0$/, '1'), line('clean')]] }] });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([{ field: 'streams[0].values[0]', reason: expect.stringMatching(/^entry for stream '\{app="web"\}' with timestamp \d+ refused: msg contains a NUL/) }]);
    expect(await count(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1 AND source = 'loki-push'`)).toBe(before + 1);
  });

  it('case 02b: should answer every clean request 2xx while another request of the tenant carries a NUL', async () => {
    for (let round = 0; round < 5; round++) {
      const at = now();
      const good = Array.from({ length: 30 }, (_, i) => post('/ingest', { timestamp: at, service: 'shop', duration_ms: 100 + i, status_code: 200 }));
      const bad = post('/ingest', { timestamp: at, service: 'shop', duration_ms: 100, status_code: 200, note: 'a\u0000b' });
      const res = await Promise.all([...good, bad]);
      expect(res.slice(0, 30).map((r) => r.status)).toEqual(Array(30).fill(200));
      expect(res[30].status).toBe(400);
      expect(res[30].body.results[0].errors[0].field).toBe('note');
    }
  });

  it('case 03: should reject bytes beyond what the column holds (1e19) on its own with 207', async () => {
    const res = await request(sut.http)
      .post('/ingest')
      .set('X-API-Key', key)
      .set('Content-Type', 'application/json')
      .send(
        `[{"timestamp":"${now()}","service":"web","duration_ms":120,"status_code":200,"bytes":10000000000000000000},` +
          `{"timestamp":"${now()}","service":"web","duration_ms":130,"status_code":200}]`,
      )
      .expect(207);
    expect(res.body.results[0].errors).toEqual([{ field: 'bytes', reason: `must be at most ${Number.MAX_SAFE_INTEGER}` }]);
    expect(res.body.results[1].status).toBe('accepted');
  });

  it('case 06: should reject an event a year ahead, so /latest-anomalies shows what just happened', async () => {
    const svc = `future-${Date.now()}`;
    const t0 = Date.now() - 60_000;
    await post('/ingest', Array.from({ length: 40 }, (_, i) => ({ timestamp: new Date(t0 + i * 1000).toISOString(), service: svc, duration_ms: 100 + (i % 7) * 5, status_code: 200 }))).expect(200);
    const ahead = new Date(Date.now() + 365 * 86400_000).toISOString();
    const future = await post('/ingest', { timestamp: ahead, service: svc, duration_ms: 5000, status_code: 200 }).expect(400);
    expect(future.body.results[0].errors).toEqual([
      { field: 'timestamp', reason: expect.stringMatching(/^too new: .*, newest acceptable timestamp is: /) },
    ]);
    const slow = await post('/ingest', { timestamp: now(), service: svc, duration_ms: 6000, status_code: 200 }).expect(200);
    expect(slow.body.results[0].detection.prediction).toBe(-1);
    const latest = await request(sut.http).get(`/latest-anomalies?limit=1&service=${svc}`).set('X-API-Key', key).expect(200);
    expect(latest.body).toHaveLength(1);
    expect(latest.body[0]).toMatchObject({ duration_ms: 6000 });
    expect(await count(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1 AND ts > now() + interval '1 day'`)).toBe(0);
  });

  it('case 07: should reject Loki entries older than the maximum age per entry, creating no per-minute rows', async () => {
    const tag = Date.now();
    const streams = Array.from({ length: 50 }, (_, i) => ({
      stream: { app: `old-svc-${tag}-${i}` },
      values: [['1570818238000000000', JSON.stringify({ duration_ms: 10, status_code: 200 })]],
    }));
    const res = await post('/loki/api/v1/push', { streams });
    expect(res.status).toBe(400);
    expect(res.body.details).toHaveLength(50);
    expect(res.body.details[0].reason).toMatch(/^entry for stream '\{app="old-svc-\d+-0"\}' has timestamp too old: 2019-10-11T18:23:58.000Z, oldest acceptable timestamp is: /);
    await sut.app.get(SeriesService).closeTenant(t);
    expect(await count(`SELECT COUNT(*)::int AS n FROM series_minutes WHERE tenant_id = $1 AND service LIKE 'old-svc-%'`)).toBe(0);
    expect(await count(`SELECT COUNT(*)::int AS n FROM series_partials WHERE tenant_id = $1 AND service LIKE 'old-svc-%'`)).toBe(0);
  });
});

describe(`${EventRepository.name} (coalesced writes)`, () => {
  const t = newTenantId();
  let sut: TestApp;
  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t] });
  });
  afterAll(() => sut.close());

  const row = (metadataJson = '{}'): EventRow => ({
    id: newEventId(),
    service: 'svc',
    ts: new Date(),
    source: 'api',
    durationMs: 100,
    statusCode: 200,
    bytes: 10,
    metadata: {},
    metadataJson,
    score: 0.1,
    prediction: 1,
    modelVersion: null,
    baseline: null,
  });

  it('should give each request of a failed merged statement its own answer: the faulty one fails, the others are stored', async () => {
    const repo = sut.app.get(EventRepository);
    const good = Array.from({ length: 10 }, () => [row(), row()]);
    // Bypasses validation on purpose: a value PostgreSQL refuses (jsonb cannot hold \u0000).
    const bad = [row('{"note":"a\\u0000b"}')];
    const results = await Promise.allSettled([...good.slice(0, 5), bad, ...good.slice(5)].map((rows) => repo.insertScored(t, rows, [])));
    expect(results[5]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ code: '22P05' }) });
    const fulfilled = results.filter((r, i) => i !== 5);
    expect(fulfilled.every((r) => r.status === 'fulfilled')).toBe(true);
    fulfilled.forEach((r, k) => expect([...(r as PromiseFulfilledResult<Set<string>>).value].sort()).toEqual(good[k].map((e) => e.id).sort()));
    const [{ n }] = await sut.database.dataSource.query(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1`, [t]);
    expect(n).toBe(20);
  });
});
