import http from 'http';
import { AddressInfo } from 'net';
import request from 'supertest';
import { SeriesService } from '../src/modules/detection/series.service';
import { httpEvent } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const MINUTE = 60_000;

describe('Limits before work', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  let port: number;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, ingestMaxBytes: 2 * 1024 * 1024, requestBodyMaxBytes: 4096, replayMaxSpanDays: 30, replayMaxSeriesMinutes: 50_000 });
    await new Promise<void>((resolve) => sut.http.listen(0, '127.0.0.1', resolve));
    port = (sut.http.address() as AddressInfo).port;
  });
  afterAll(() => sut.close());

  it.each(['/silences', '/replay', '/detections/00000000-0000-0000-0000-000000000000/feedback', '/loki/api/v1/push'])(
    'should refuse a JSON array on %s, which takes one object, without validating its elements',
    async (path) => {
      const res = await request(sut.http).post(path).set('X-API-Key', key).set('Content-Type', 'application/json').send('[' + Array(1000).fill('{}').join(',') + ']').expect(400);
      expect(res.body).toMatchObject({ code: 'INVALID_BODY', details: [{ field: 'body', reason: 'must be a JSON object, not an array' }] });
    },
  );

  it('should refuse a body nested deeper than the limit naming the body', async () => {
    const deep = '{"a":'.repeat(500) + '1' + '}'.repeat(500);
    const res = await request(sut.http).post('/silences').set('X-API-Key', key).set('Content-Type', 'application/json').send(deep).expect(400);
    expect(res.body).toMatchObject({ code: 'INVALID_BODY', details: [{ field: 'body', reason: expect.stringContaining('nested deeper') }] });
  });

  it('should answer a chunked body over the limit with 413 instead of dropping the connection', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/ingest', method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('[');
      const chunk = JSON.stringify(httpEvent()) + ',';
      let sent = 0;
      const pump = () => {
        // Keeps sending past the limit, as a client that does not look at the answer would.
        while (sent < 3 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end(JSON.stringify(httpEvent()) + ']');
      };
      pump();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('should refuse a replay whose events span more than REPLAY_MAX_SPAN_DAYS, before starting a job', async () => {
    const events = [httpEvent({ at: new Date('2015-01-01T00:00:00Z') }), httpEvent({ at: new Date('2025-01-01T00:00:00Z') })];
    const started = Date.now();
    const res = await request(sut.http).post('/replay').set('X-API-Key', key).send({ events }).expect(400);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.body.details).toEqual([{ field: 'events', reason: expect.stringContaining('over REPLAY_MAX_SPAN_DAYS (30)') }]);
    const range = await request(sut.http).post('/replay').set('X-API-Key', key).send({ loki: { start: '2015-01-01T00:00:00Z', end: '2025-01-01T00:00:00Z' } }).expect(400);
    expect(range.body.details).toEqual([{ field: 'loki.end', reason: expect.stringContaining('REPLAY_MAX_SPAN_DAYS') }]);
  });

  it('should replay many one-per-minute events (no stack overflow) and refuse more service-minutes than allowed', async () => {
    const t0 = Date.UTC(2025, 0, 1);
    const many = Array.from({ length: 20_000 }, (_, i) => ({ timestamp: new Date(t0 + i * MINUTE).toISOString(), service: 'svc', duration_ms: 100 }));
    const started = await request(sut.http).post('/replay').set('X-API-Key', key).send({ events: many, report: true });
    expect(started.status).toBe(202);
    const deadline = Date.now() + 120_000;
    let job: { status: string; error: string | null; summary: { events: number } | null } = { status: 'queued', error: null, summary: null };
    while (!['done', 'failed'].includes(job.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      job = (await request(sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', key).expect(200)).body;
    }
    expect(job).toMatchObject({ status: 'done', error: null, summary: { events: 20_000 } });
    const services = Array.from({ length: 4 }, (_, s) => [0, 20 * 86_400_000].map((dt) => ({ timestamp: new Date(t0 + dt).toISOString(), service: `s${s}`, duration_ms: 1 }))).flat();
    const tooMany = await request(sut.http).post('/replay').set('X-API-Key', key).send({ events: services }).expect(400);
    expect(tooMany.body.details[0].reason).toContain('over REPLAY_MAX_SERIES_MINUTES (50000)');
  });

  it('should keep closing a tenant\'s series when a stored latency is not finite (1e308, Infinity)', async () => {
    const minute = new Date(Math.floor((Date.now() - 10 * MINUTE) / MINUTE) * MINUTE);
    await sut.database.dataSource.query(
      `INSERT INTO series_partials (tenant_id, service, minute, count, errors, latencies) VALUES ($1, 'huge', $2, 3, 0, ARRAY[100, 1e308, 'Infinity']::float8[])`,
      [t, minute],
    );
    // The tenant sends nothing newer: the watermark moves on with the wall clock once the idle time has passed.
    await expect(sut.app.get(SeriesService).closeTenant(t)).resolves.toBeDefined();
    await expect(sut.app.get(SeriesService).closeTenant(t, Date.now() + 20 * MINUTE)).resolves.toBeDefined();
    const [row] = await sut.database.dataSource.query(`SELECT count, latency_p95 FROM series_minutes WHERE tenant_id = $1 AND service = 'huge' AND minute = $2`, [t, minute]);
    expect(row).toMatchObject({ count: 3 });
    expect(Number(row.latency_p95)).toBeLessThan(200);
  });
});
