import request from 'supertest';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

describe('Tenancy guard (auth matrix)', () => {
  const a = newTenantId('a');
  const b = newTenantId('b');
  const open = newTenantId('open');
  const keyA = newApiKey();
  const keyA2 = newApiKey();
  const keyB = newApiKey();
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({
      environment: 'development',
      multiTenantEnabled: true,
      defaultTenant: a,
      tenants: [a, b, open],
      tenantApiKeys: { [a]: [keyA, keyA2], [b]: [keyB] },
    });
  });
  afterAll(() => sut.close());

  it('should answer 401 MISSING_API_KEY without a key on a keyed tenant', async () => {
    const res = await request(sut.http).get('/tenant').expect(401);
    expect(res.body).toMatchObject({ statusCode: 401, code: 'MISSING_API_KEY', error: 'Unauthorized' });
    expect(typeof res.body.message).toBe('string');
  });

  it('should answer 401 INVALID_API_KEY for an unknown key', async () => {
    const res = await request(sut.http).get('/tenant').set('X-API-Key', 'not-a-real-key-123').expect(401);
    expect(res.body.code).toBe('INVALID_API_KEY');
  });

  it("should resolve the key's own tenant when none is asked for", async () => {
    const res = await request(sut.http).get('/tenant').set('X-API-Key', keyB).expect(200);
    expect(res.body).toEqual({ tenant: b, auth: 'api-key' });
  });

  it('should accept Authorization: Bearer as well as X-API-Key', async () => {
    const res = await request(sut.http).get('/tenant').set('Authorization', `Bearer ${keyA}`).expect(200);
    expect(res.body.tenant).toBe(a);
  });

  it('should accept every key of a tenant (rotation)', async () => {
    await request(sut.http).get('/tenant').set('X-API-Key', keyA2).expect(200);
  });

  it("should answer 403 when a key asks for another tenant (query)", async () => {
    const res = await request(sut.http).get(`/tenant?tenant=${b}`).set('X-API-Key', keyA).expect(403);
    expect(res.body).toMatchObject({ statusCode: 403, code: 'TENANT_FORBIDDEN', error: 'Forbidden' });
  });

  it('should answer 403 when a key asks for another tenant (X-Tenant header)', async () => {
    const res = await request(sut.http).get('/tenant').set('X-Tenant', b).set('X-API-Key', keyA).expect(403);
    expect(res.body.code).toBe('TENANT_FORBIDDEN');
  });

  it('should answer 403, not 404, for a tenant that does not exist (names cannot be probed)', async () => {
    const res = await request(sut.http).get('/tenant?tenant=nonexistent').set('X-API-Key', keyA).expect(403);
    expect(res.body.code).toBe('TENANT_FORBIDDEN');
  });

  it('should answer 403 for an open tenant asked with another tenant key', async () => {
    await request(sut.http).get(`/tenant?tenant=${open}`).set('X-API-Key', keyA).expect(403);
  });

  it('should let an explicit matching tenant through', async () => {
    const res = await request(sut.http).get(`/tenant?tenant=${a}`).set('X-API-Key', keyA).expect(200);
    expect(res.body.tenant).toBe(a);
  });

  it('should open a keyless tenant in development', async () => {
    const res = await request(sut.http).get(`/tenant?tenant=${open}`).expect(200);
    expect(res.body).toEqual({ tenant: open, auth: 'open' });
  });

  it('should still require a key for a keyed tenant named explicitly', async () => {
    const res = await request(sut.http).get(`/tenant?tenant=${b}`).expect(401);
    expect(res.body.code).toBe('MISSING_API_KEY');
  });

  it('should answer 401 without a key for a tenant that does not exist', async () => {
    const res = await request(sut.http).get('/tenant?tenant=ghost').expect(401);
    expect(res.body.code).toBe('MISSING_API_KEY');
  });

  it('should reject a malformed tenant parameter with 400 and the field', async () => {
    const res = await request(sut.http).get('/tenant?tenant=bad%20name!').set('X-API-Key', keyA).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.details).toEqual([{ field: 'tenant', reason: expect.any(String) }]);
  });

  it.each(['/healthz', '/readyz', '/prom', '/docs', '/docs-json'])('should serve public route %s without a key', async (path) => {
    await request(sut.http).get(path).expect(200);
  });
});

describe('Tenancy guard in production', () => {
  it('should not open a tenant in production even if the config were built without keys check', async () => {
    const t = newTenantId();
    const key = newApiKey();
    const sut = await startTestApp({ environment: 'production', defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, metricsToken: 'scrape-token-2' });
    try {
      await request(sut.http).get('/tenant').expect(401);
      await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
    } finally {
      await sut.close();
    }
  });
});

describe('Failed authentications per client address', () => {
  it('should answer 429 to an address past AUTH_FAILURE_LIMIT_PER_MINUTE failures, valid key or not, and count other addresses apart', async () => {
    const [t, other] = [newTenantId(), newTenantId()];
    const key = newApiKey();
    const sut = await startTestApp({
      multiTenantEnabled: true,
      defaultTenant: t,
      tenants: [t, other],
      tenantApiKeys: { [t]: [key], [other]: [newApiKey()] },
      authFailureLimitPerMinute: 3,
      trustProxy: 'loopback',
    });
    const from = (ip: string) => ({ 'X-Forwarded-For': ip });
    try {
      await request(sut.http).get('/tenant').set(from('203.0.113.7')).set('X-API-Key', 'guess-0001').expect(401);
      await request(sut.http).get('/tenant').set(from('203.0.113.7')).expect(401);
      await request(sut.http).get('/tenant').set(from('203.0.113.7')).set('X-API-Key', key).query({ tenant: other }).expect(403);
      const blocked = await request(sut.http).get('/tenant').set(from('203.0.113.7')).set('X-API-Key', key).expect(429);
      expect(blocked.body.code).toBe('RATE_LIMITED');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      // Another address is not affected, and public routes stay open.
      await request(sut.http).get('/tenant').set(from('198.51.100.9')).set('X-API-Key', key).expect(200);
      await request(sut.http).get('/healthz').set(from('203.0.113.7')).expect(200);
    } finally {
      await sut.close();
    }
  });
});

