import request from 'supertest';
import { SeriesService } from '../src/modules/detection/series.service';
import { ReplayService } from '../src/modules/detection/replay/replay.service';
import { httpEvent } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const MINUTE = 60_000;
const T0 = Date.UTC(2025, 10, 14, 0, 0);

/** `perMinute` events a minute for `minutes` minutes from `start`, latency around `ms`. */
function traffic(start: number, minutes: number, perMinute: number, ms = 100, status = 200): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let m = 0; m < minutes; m++) {
    for (let i = 0; i < perMinute; i++) {
      const jitter = ((i * 7919 + m * 104729) % 1000) / 1000;
      out.push(httpEvent({ service: 'svc', at: new Date(start + m * MINUTE + Math.floor((i / perMinute) * MINUTE)), durationMs: Math.round(ms * (0.8 + 0.4 * jitter)), status }));
    }
  }
  return out;
}

async function send(app: TestApp, items: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += 2000) await request(app.http).post('/ingest').send(items.slice(i, i + 2000)).expect(200);
}

describe(SeriesService.name, () => {
  it('should flag a service going silent as a drop of its request count, once minutes close', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0 });
    try {
      await send(sut, traffic(T0, 180, 20));
      const series = sut.app.get(SeriesService);
      expect(await series.closeTenant(t, T0 + 180 * MINUTE + 120_000)).toEqual([]);
      // Nothing arrives for 10 minutes: no event, yet the traffic series sees zeros.
      const found = await series.closeTenant(t, T0 + 191 * MINUTE + 120_000);
      const drop = found.filter((d) => d.metric === 'request_count');
      expect(drop.length).toBeGreaterThanOrEqual(1);
      expect(drop[0]).toMatchObject({ kind: 'series', service: 'svc', value: 0, prediction: -1 });
      expect(drop[0].likelihood).toBeGreaterThanOrEqual(0.9999);
      const listed = await request(sut.http).get('/detections?kind=series').expect(200);
      expect(listed.body.items[0]).toMatchObject({ kind: 'series', metric: 'request_count', value: 0, explanation: { summary: expect.stringContaining('no requests') } });
      const latest = await request(sut.http).get('/latest-anomalies').expect(200);
      expect(latest.body[0]).toMatchObject({ kind: 'series', service: 'svc' });
    } finally {
      await sut.close();
    }
  });

  it('should flag a latency degradation on latency_p95, and resume from stored state in another process', async () => {
    const t = newTenantId();
    const cfg = { defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0 };
    const first = await startTestApp(cfg);
    try {
      await send(first, traffic(T0, 120, 10, 100));
      expect(await first.app.get(SeriesService).closeTenant(t, T0 + 120 * MINUTE + 120_000)).toEqual([]);
    } finally {
      await first.close();
    }
    const second = await startTestApp(cfg); // a restart: detectors come back from series_state
    try {
      await send(second, traffic(T0 + 120 * MINUTE, 10, 10, 900));
      const found = await second.app.get(SeriesService).closeTenant(t, T0 + 130 * MINUTE + 120_000);
      const slow = found.filter((d) => d.metric === 'latency_p95');
      expect(slow.length).toBeGreaterThanOrEqual(1);
      expect(slow[0].value).toBeGreaterThan(500);
      expect(found.some((d) => d.ts.getTime() < T0 + 120 * MINUTE)).toBe(false); // closed minutes are not re-scored
      const rows = await second.database.dataSource.query(`SELECT COUNT(*)::int AS n FROM series_minutes WHERE tenant_id = $1`, [t]);
      expect(rows[0].n).toBe(130);
    } finally {
      await second.close();
    }
  });

  it('should merge late events within the grace period and count later ones as late without re-scoring', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0, seriesGraceSeconds: 120 });
    const series = sut.app.get(SeriesService);
    try {
      await send(sut, traffic(T0, 5, 10));
      await series.closeTenant(t, T0 + 4 * MINUTE + 120_000); // closes minutes 0..3; minute 4 still open
      await send(sut, traffic(T0 + 4 * MINUTE, 1, 5)); // late but within grace: merged into minute 4
      await send(sut, traffic(T0 + 1 * MINUTE, 1, 3)); // minute 1 closed already: late
      await series.closeTenant(t, T0 + 5 * MINUTE + 120_000);
      const rows = await sut.database.dataSource.query(`SELECT minute, count, late FROM series_minutes WHERE tenant_id = $1 ORDER BY minute`, [t]);
      expect(rows.map((r: { count: number; late: number }) => [r.count, r.late])).toEqual([
        [10, 0],
        [13, 3],
        [10, 0],
        [10, 0],
        [15, 0],
      ]);
    } finally {
      await sut.close();
    }
  });

  it('should not let two replicas close the same minutes twice', async () => {
    const t = newTenantId();
    const cfg = { defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0 };
    const one = await startTestApp(cfg);
    const two = await startTestApp(cfg);
    try {
      await send(one, traffic(T0, 30, 5));
      await Promise.all([one.app.get(SeriesService).closeTenant(t, T0 + 30 * MINUTE + 120_000), two.app.get(SeriesService).closeTenant(t, T0 + 30 * MINUTE + 120_000)]);
      await two.app.get(SeriesService).closeTenant(t, T0 + 30 * MINUTE + 120_000);
      const rows = await one.database.dataSource.query(`SELECT COUNT(*)::int AS n, SUM(count)::int AS events FROM series_minutes WHERE tenant_id = $1`, [t]);
      expect(rows[0]).toEqual({ n: 30, events: 150 });
    } finally {
      await one.close();
      await two.close();
    }
  });
});

describe('POST /replay', () => {
  const [a, b] = [newTenantId('a'), newTenantId('b')];
  const [ka, kb] = [newApiKey(), newApiKey()];
  let sut: TestApp;
  beforeAll(async () => {
    sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: a, tenants: [a, b], tenantApiKeys: { [a]: [ka], [b]: [kb] }, seriesCloseIntervalSeconds: 0 });
  });
  afterAll(() => sut.close());

  it('should backtest events through event and series detection as a job, without live detections, with an HTML report', async () => {
    const events = [...traffic(T0, 150, 8, 100), ...traffic(T0 + 150 * MINUTE, 10, 8, 1500), ...traffic(T0 + 170 * MINUTE, 5, 8, 100)];
    const started = await request(sut.http).post('/replay').set('X-API-Key', ka).send({ events, report: true }).expect(202);
    expect(started.body).toEqual({ id: expect.any(String), status: 'queued' });
    await sut.app.get(ReplayService).drain();
    const job = await request(sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', ka).expect(200);
    expect(job.body).toMatchObject({ status: 'done', progress: { processed: events.length, total: events.length }, summary: { events: events.length, rejected: 0 } });
    expect(job.body.summary.eventAnomalies).toBeGreaterThan(0);
    expect(job.body.detections.some((d: { kind: string; metric?: string }) => d.kind === 'series' && d.metric === 'latency_p95')).toBe(true);
    expect(job.body.detections.some((d: { kind: string; metric?: string; value?: number }) => d.kind === 'series' && d.metric === 'request_count' && d.value === 0)).toBe(true);
    // A backtest creates no live detections.
    expect((await request(sut.http).get('/detections').set('X-API-Key', ka).expect(200)).body.items).toEqual([]);
    const report = await request(sut.http).get(`/replay/${started.body.id}/report`).set('X-API-Key', ka).expect(200);
    expect(report.headers['content-type']).toMatch(/text\/html/);
    expect(report.text).toMatch(/^<!doctype html>/);
    // Three charts (requests, latency, errors) drawn by the inlined Chart.js (test/replay-report.e2e-spec.ts opens it).
    expect((report.text.match(/<canvas /g) ?? []).length).toBe(3);
    expect(report.text).toContain('Chart.js');
  });

  it('should validate the request and keep jobs per tenant', async () => {
    const bad = await request(sut.http).post('/replay').set('X-API-Key', ka).send({}).expect(400);
    expect(bad.body.details[0].field).toBe('events');
    const started = await request(sut.http).post('/replay').set('X-API-Key', ka).send({ events: traffic(T0, 2, 2) }).expect(202);
    await sut.app.get(ReplayService).drain();
    await request(sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', kb).expect(404);
    await request(sut.http).get(`/replay/${started.body.id}/report`).set('X-API-Key', kb).expect(404);
    await request(sut.http).get(`/replay/not-a-job`).set('X-API-Key', ka).expect(404);
  });
});
