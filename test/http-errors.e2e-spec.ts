import request from 'supertest';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

describe('Error shape', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({
      defaultTenant: t,
      tenants: [t],
      tenantApiKeys: { [t]: [key] },
      rateLimitPerMinute: 3,
      requestBodyMaxBytes: 2048,
    });
  });
  afterAll(() => sut.close());

  const shape = {
    statusCode: expect.any(Number),
    code: expect.stringMatching(/^[A-Z_]+$/),
    error: expect.any(String),
    message: expect.any(String),
    requestId: expect.any(String),
  };

  it('should answer an unknown route with 404 ROUTE_NOT_FOUND', async () => {
    const res = await request(sut.http).get('/no/such/route').expect(404);
    expect(res.body).toMatchObject({ ...shape, statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found' });
  });

  it('should answer a body that is not JSON with 400 INVALID_BODY', async () => {
    const res = await request(sut.http)
      .post('/tenant')
      .set('Content-Type', 'application/json')
      .send('{"not json')
      .expect(400);
    expect(res.body).toMatchObject({ ...shape, code: 'INVALID_BODY' });
  });

  it('should answer a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await request(sut.http)
      .post('/tenant')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(5000) }))
      .expect(413);
    expect(res.body).toMatchObject({ ...shape, statusCode: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('should echo a well-formed X-Request-Id in the response and error body', async () => {
    const res = await request(sut.http).get('/nope').set('X-Request-Id', 'req-123').expect(404);
    expect(res.headers['x-request-id']).toBe('req-123');
    expect(res.body.requestId).toBe('req-123');
  });

  it('should answer 429 RATE_LIMITED with Retry-After past the tenant limit', async () => {
    for (let i = 0; i < 3; i++) await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
    const res = await request(sut.http).get('/tenant').set('X-API-Key', key).expect(429);
    expect(res.body).toMatchObject({ ...shape, statusCode: 429, code: 'RATE_LIMITED' });
    const retry = Number(res.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
  });
});

describe('Rate limit across replicas', () => {
  it('should share one tenant budget between two app instances on the same database', async () => {
    const t = newTenantId();
    const key = newApiKey();
    const cfg = { defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, rateLimitPerMinute: 4 };
    const one = await startTestApp(cfg);
    const two = await startTestApp(cfg);
    try {
      // A window boundary in the middle would reset the count; start right after one.
      const msIntoMinute = Date.now() % 60_000;
      if (msIntoMinute > 55_000) await new Promise((r) => setTimeout(r, 60_500 - msIntoMinute));
      const statuses: number[] = [];
      for (const app of [one, two, one, two, one, two]) {
        statuses.push((await request(app.http).get('/tenant').set('X-API-Key', key)).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('should never let replicas leasing tokens in chunks exceed the limit together', async () => {
    const t = newTenantId();
    const key = newApiKey();
    const cfg = { defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, rateLimitPerMinute: 200 };
    const one = await startTestApp(cfg);
    const two = await startTestApp(cfg);
    try {
      const msIntoMinute = Date.now() % 60_000;
      if (msIntoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_500 - msIntoMinute));
      const statuses = await Promise.all(
        Array.from({ length: 260 }, (_, i) => request((i % 2 ? one : two).http).get('/tenant').set('X-API-Key', key).then((r) => r.status)),
      );
      const ok = statuses.filter((s) => s === 200).length;
      expect(ok).toBeLessThanOrEqual(200);
      // At most a chunk (200 / 50) and the quarter of one leased ahead left unused per replica.
      expect(ok).toBeGreaterThanOrEqual(200 - 2 * 5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(260 - ok);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('should lease the next chunk before the current one runs out, so no request waits for the count', async () => {
    const t = newTenantId();
    const key = newApiKey();
    // 500 a minute: chunks of 10 tokens.
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, rateLimitPerMinute: 500 });
    try {
      const msIntoMinute = Date.now() % 60_000;
      if (msIntoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_500 - msIntoMinute));
      const leased = async () => {
        const rows = await sut.database.dataSource.query(`SELECT COALESCE(SUM(hits), 0)::int AS n FROM rate_limit_windows WHERE tenant_id = $1`, [t]);
        return rows[0].n as number;
      };
      // 7 of the first chunk's 10 used: 3 left, more than a quarter.
      for (let i = 0; i < 7; i++) await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
      expect(await leased()).toBe(10);
      // The 8th leaves 2 (a quarter or less): the next chunk is leased in the background.
      await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
      const deadline = Date.now() + 10_000;
      while ((await leased()) < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await leased()).toBe(20);
      // And the requests go on from it without another lease.
      for (let i = 0; i < 3; i++) await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
      expect(await leased()).toBe(20);
    } finally {
      await sut.close();
    }
  });

  it('should not count one tenant against another', async () => {
    const [t1, t2] = [newTenantId(), newTenantId()];
    const [k1, k2] = [newApiKey(), newApiKey()];
    const sut = await startTestApp({
      multiTenantEnabled: true,
      defaultTenant: t1,
      tenants: [t1, t2],
      tenantApiKeys: { [t1]: [k1], [t2]: [k2] },
      rateLimitPerMinute: 1,
    });
    try {
      await request(sut.http).get('/tenant').set('X-API-Key', k1).expect(200);
      await request(sut.http).get('/tenant').set('X-API-Key', k1).expect(429);
      await request(sut.http).get('/tenant').set('X-API-Key', k2).expect(200);
    } finally {
      await sut.close();
    }
  });
});
