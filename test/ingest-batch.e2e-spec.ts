import request from 'supertest';
import { httpEvent, newEventId } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

/** Large writes (100 events and more) take the COPY path of the event repository, unless INGEST_COPY_MIN_EVENTS is 0. */
describe.each([
  ['COPY', 100],
  ['INSERT', 0],
])('POST /ingest, large batches through %s', (_path, ingestCopyMinEvents) => {
  const a = newTenantId();
  const b = newTenantId();
  const keyA = newApiKey();
  const keyB = newApiKey();
  let sut: TestApp;
  const post = (key: string, body: unknown) => request(sut.http).post('/ingest').set('X-API-Key', key).send(body as object);
  const q = (sql: string, params: unknown[]) => sut.database.dataSource.query(sql, params);

  beforeAll(async () => {
    // Series closing off: it consumes the partials these tests compare, at whatever moment its timer fires
    // (on a busy machine, between the two tenants' reads).
    sut = await startTestApp({ tenants: [a, b], tenantApiKeys: { [a]: [keyA], [b]: [keyB] }, defaultTenant: a, ingestCopyMinEvents, seriesCloseIntervalSeconds: 0 });
  });
  afterAll(() => sut.close());

  const batch = (n: number, t0 = Date.UTC(2025, 10, 14, 12)): Record<string, unknown>[] =>
    Array.from({ length: n }, (_, i) => ({
      ...httpEvent({ id: newEventId(), at: new Date(t0 + i * 1000), status: i % 10 === 0 ? 503 : 200, durationMs: 50 + i }),
      service: i % 3 ? 'api' : 'web',
      note: i === 7 ? 'tab\there, newline\nthere, back\\slash, "quotes", \u00e9\u4e2d' : `n${i}`,
    }));

  it('should store every event with its metadata intact and the same series partials as small writes', async () => {
    const body = batch(250);
    const res = await post(keyA, body).expect(200);
    expect(res.body.accepted).toBe(250);
    const [{ n }] = await q(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1`, [a]);
    expect(n).toBe(250);
    const [row] = await q(`SELECT metadata FROM events WHERE tenant_id = $1 AND id = $2`, [a, body[7].id]);
    expect(row.metadata.note).toBe(body[7].note);

    // The same events in writes of 10 (the INSERT path) for tenant b: the same partials.
    for (let i = 0; i < body.length; i += 10) await post(keyB, body.slice(i, i + 10)).expect(200);
    const partials = async (t: string) => [
      await q(`SELECT service, minute, SUM(count)::int AS count, SUM(errors)::int AS errors FROM series_partials WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`, [t]),
      await q(`SELECT service, minute, array_agg(l ORDER BY l) AS latencies FROM series_partials, unnest(latencies) AS l WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`, [t]),
    ];
    const pa = await partials(a);
    expect(pa[0].length).toBeGreaterThan(4);
    expect(pa).toEqual(await partials(b));
  });

  it('should store a retried large batch once and answer it with the original results', async () => {
    const body = batch(150, Date.UTC(2025, 10, 15));
    const first = await post(keyA, body).expect(200);
    const count = async () => (await q(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1`, [a]))[0].n;
    const before = await count();
    const second = await post(keyA, body).expect(200);
    expect(second.body).toEqual(first.body);
    expect(await count()).toBe(before);

    // Half already stored, half new: only the new half is added.
    const mixed = [...body.slice(75), ...batch(75, Date.UTC(2025, 10, 16))];
    const third = await post(keyA, mixed).expect(200);
    expect(third.body.accepted).toBe(150);
    expect(third.body.results.slice(0, 75)).toEqual(first.body.results.slice(75).map((r: { index: number }) => ({ ...r, index: r.index - 75 })));
    expect(await count()).toBe(before + 75);
    const [{ n }] = await q(`SELECT SUM(count)::int AS n FROM series_partials WHERE tenant_id = $1 AND minute >= '2025-11-15' AND minute < '2025-11-17'`, [a]);
    expect(n).toBe(225);
  });

  it('should store a large batch once when two requests carry it at the same moment', async () => {
    const body = batch(200, Date.UTC(2025, 10, 17));
    const [r1, r2] = await Promise.all([post(keyB, body), post(keyB, body)]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    const [{ n }] = await q(`SELECT COUNT(*)::int AS n FROM events WHERE tenant_id = $1 AND ts >= '2025-11-17' AND ts < '2025-11-18'`, [b]);
    expect(n).toBe(200);
    const [{ c }] = await q(`SELECT SUM(count)::int AS c FROM series_partials WHERE tenant_id = $1 AND minute >= '2025-11-17' AND minute < '2025-11-18'`, [b]);
    expect(c).toBe(200);
  });

  it("should not store one tenant's batch under another tenant's ids", async () => {
    const body = batch(120, Date.UTC(2025, 10, 18));
    await post(keyA, body).expect(200);
    const res = await post(keyB, body).expect(200);
    expect(res.body.accepted).toBe(120);
    const [{ n }] = await q(`SELECT COUNT(*)::int AS n FROM events WHERE id = ANY($1::text[])`, [body.map((e) => e.id)]);
    expect(n).toBe(240);
  });
});
