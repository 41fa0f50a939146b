import { Logger } from '@nestjs/common';
import request from 'supertest';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

describe('Access log levels', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  const lines: { level: string; path: string; status: number }[] = [];

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, metricsToken: 'scrape-token-3' });
    // Tests run without a logger: catch the access-log calls of the request middleware.
    for (const level of ['log', 'debug'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation(function (this: Logger, message: unknown, ..._rest: unknown[]) {
        const m = message as { msg?: string; path?: string; status?: number };
        if ((this as unknown as { context?: string }).context === 'HTTP' && m?.msg === 'request') lines.push({ level, path: m.path!, status: m.status! });
      });
    }
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await sut.close();
  });

  it('should log probes and scrapes at debug, other requests and failed scrapes at info', async () => {
    await request(sut.http).get('/healthz').expect(200);
    await request(sut.http).get('/readyz').expect(200);
    await request(sut.http).get('/prom').set('Authorization', 'Bearer scrape-token-3').expect(200);
    await request(sut.http).get('/prom').expect(401);
    await request(sut.http).get('/tenant').set('X-API-Key', key).expect(200);
    // The line is written on the response's 'finish' event: wait for all five, with a deadline.
    for (const end = Date.now() + 5000; lines.length < 5 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    const level = (path: string, status: number) => lines.find((l) => l.path === path && l.status === status)?.level;
    expect(level('/healthz', 200)).toBe('debug');
    expect(level('/readyz', 200)).toBe('debug');
    expect(level('/prom', 200)).toBe('debug');
    expect(level('/prom', 401)).toBe('log');
    expect(level('/tenant', 200)).toBe('log');
  });
});
