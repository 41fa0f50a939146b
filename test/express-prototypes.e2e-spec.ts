import type { IncomingMessage, Server, ServerResponse } from 'http';
import request from 'supertest';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

describe('HTTP server (ExpressPrototypeAdapter)', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] } });
  });
  afterAll(() => sut.close());

  it("should build each request and response on Express's prototypes, so Express has none to change", async () => {
    const express = sut.app.getHttpAdapter().getInstance() as { request: object; response: object };
    const seen: { req: boolean; res: boolean }[] = [];
    const server = sut.http as Server;
    // Runs before Express's handler: what Node's server built, before Express touches it.
    const probe = (req: IncomingMessage, res: ServerResponse) => seen.push({ req: Object.getPrototypeOf(req) === express.request, res: Object.getPrototypeOf(res) === express.response });
    server.prependListener('request', probe);
    try {
      const ok = await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
      expect(ok.body).toMatchObject({ tenant: t });
      const missing = await request(sut.http).get('/no/such/route').expect(404);
      expect(missing.body.code).toBe('ROUTE_NOT_FOUND');
    } finally {
      server.removeListener('request', probe);
    }
    expect(seen).toEqual([
      { req: true, res: true },
      { req: true, res: true },
    ]);
  });
});
