import request from 'supertest';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

describe('GET /prom', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] } });
  });
  afterAll(() => sut.close());

  it('should expose process metrics and HTTP metrics by route, method, status and tenant', async () => {
    await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
    await request(sut.http).get('/tenant').expect(401);
    const res = await request(sut.http).get('/prom').expect(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(res.text).toContain(`anomaly_detector_http_requests_total{route="/tenant",method="GET",status="200",tenant="${t}"} 1`);
    expect(res.text).toContain('anomaly_detector_http_requests_total{route="/tenant",method="GET",status="401",tenant="none"} 1');
    expect(res.text).toMatch(/anomaly_detector_http_request_duration_seconds_bucket\{le="0.005",route="\/tenant"/);
  });
});

describe('GET /prom with METRICS_TOKEN', () => {
  let sut: TestApp;
  beforeAll(async () => {
    sut = await startTestApp({ metricsToken: 'scrape-token-1' });
  });
  afterAll(() => sut.close());

  it('should require the bearer token', async () => {
    const res = await request(sut.http).get('/prom').expect(401);
    expect(res.body.code).toBe('METRICS_TOKEN_REQUIRED');
    await request(sut.http).get('/prom').set('Authorization', 'Bearer wrong').expect(401);
    await request(sut.http).get('/prom').set('Authorization', 'Bearer scrape-token-1').expect(200);
  });
});

describe('OpenAPI', () => {
  let sut: TestApp;
  beforeAll(async () => {
    sut = await startTestApp();
  });
  afterAll(() => sut.close());

  it('should serve the Swagger UI at /docs', async () => {
    const res = await request(sut.http).get('/docs').expect(200);
    expect(res.text).toContain('swagger-ui');
  });

  it('should declare both key schemes and put them on every guarded route, not on public ones', async () => {
    const res = await request(sut.http).get('/docs-json').expect(200);
    const doc = res.body;
    expect(doc.components.securitySchemes['api-key']).toEqual(expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }));
    expect(doc.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    const publicPaths = ['/healthz', '/readyz'];
    for (const [path, ops] of Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)) {
      for (const op of Object.values(ops)) {
        if (publicPaths.includes(path)) expect(op.security).toEqual([]);
        else expect(op.security).toEqual(expect.arrayContaining([{ 'api-key': [] }, { bearer: [] }]));
      }
    }
    expect(doc.paths['/tenant'].get.responses['403']).toBeDefined();
    expect(doc.paths['/prom']).toBeUndefined();
  });
});
