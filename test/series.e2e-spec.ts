import request from 'supertest';
import { SeriesService } from '../src/modules/detection/series.service';
import { ReplayService } from '../src/modules/detection/replay/replay.service';
import { httpEvent } from './factories/http-events';
import { DetectionRow } from '../src/modules/store/event.repository';
import { SeriesRepository } from '../src/modules/store/series.repository';
import { inTimeOrder, MINUTE, minuteHoursAgo, requests, sendAll } from './factories/incident-traffic';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

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


/**
 * Two tenants `a` and `b` with their keys on one app (series job timer off) for the enclosing
 * describe block: started before its tests, closed after. `ctx.sut` is the app once started.
 */
function twoTenants(): { a: string; b: string; ka: string; kb: string; sut: TestApp } {
  const ctx = { a: newTenantId('a'), b: newTenantId('b'), ka: newApiKey(), kb: newApiKey(), sut: undefined as unknown as TestApp };
  beforeAll(async () => {
    ctx.sut = await startTestApp({
      multiTenantEnabled: true,
      defaultTenant: ctx.a,
      tenants: [ctx.a, ctx.b],
      tenantApiKeys: { [ctx.a]: [ctx.ka], [ctx.b]: [ctx.kb] },
      seriesCloseIntervalSeconds: 0,
    });
  });
  afterAll(() => ctx.sut.close());
  return ctx;
}

describe(SeriesService.name, () => {
  it('should flag a latency degradation, and resume from stored state in another process', async () => {
    const t = newTenantId();
    const cfg = { defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0 };
    const base = minuteHoursAgo(4);
    const first = await startTestApp(cfg);
    try {
      await sendAll(first, requests('svc', base, 120, 10));
      expect(await first.app.get(SeriesService).closeTenant(t)).toEqual([]);
    } finally {
      await first.close();
    }
    const second = await startTestApp(cfg); // a restart: the signal tests come back from series_state
    try {
      await sendAll(second, requests('svc', base + 120 * MINUTE, 10, 10, () => ({ latency: 9 })));
      const found = await second.app.get(SeriesService).closeTenant(t);
      const slow = found.filter((d) => d.metric === 'latency');
      expect(slow.length).toBeGreaterThanOrEqual(1);
      expect(slow[0].value).toBeGreaterThan(500);
      expect(slow[0].ts.getTime()).toBe(base + 120 * MINUTE);
      expect(found.some((d) => d.ts.getTime() < base + 118 * MINUTE)).toBe(false); // closed minutes are not re-scored
      const rows = await second.database.dataSource.query(`SELECT COUNT(*)::int AS n FROM series_minutes WHERE tenant_id = $1`, [t]);
      // Newest event in minute 129, grace 2 minutes: minutes up to 126 are closed.
      expect(rows[0].n).toBe(127);
    } finally {
      await second.close();
    }
  });

  it('should not let two replicas close the same minutes twice', async () => {
    const t = newTenantId();
    const cfg = { defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0 };
    const one = await startTestApp(cfg);
    const two = await startTestApp(cfg);
    try {
      await sendAll(one, requests('svc', minuteHoursAgo(2), 30, 5));
      await Promise.all([one.app.get(SeriesService).closeTenant(t), two.app.get(SeriesService).closeTenant(t)]);
      await two.app.get(SeriesService).closeTenant(t);
      const rows = await one.database.dataSource.query(`SELECT COUNT(*)::int AS n, SUM(count)::int AS events FROM series_minutes WHERE tenant_id = $1`, [t]);
      expect(rows[0]).toEqual({ n: 27, events: 135 });
    } finally {
      await one.close();
      await two.close();
    }
  });
});

describe('POST /replay', () => {
  const ctx = twoTenants();
  const { ka, kb } = ctx;

  it('should backtest events through event and series detection as a job, without live detections, with an HTML report', async () => {
    const events = [...traffic(T0, 150, 8, 100), ...traffic(T0 + 150 * MINUTE, 10, 8, 1500), ...traffic(T0 + 170 * MINUTE, 5, 8, 100)];
    const started = await request(ctx.sut.http).post('/replay').set('X-API-Key', ka).send({ events, report: true }).expect(202);
    expect(started.body).toEqual({ id: expect.any(String), status: 'queued' });
    await ctx.sut.app.get(ReplayService).drain();
    const job = await request(ctx.sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', ka).expect(200);
    expect(job.body).toMatchObject({ status: 'done', progress: { processed: events.length, total: events.length }, summary: { events: events.length, rejected: 0 } });
    expect(job.body.summary.eventAnomalies).toBeGreaterThan(0);
    expect(job.body.detections.some((d: { kind: string; metric?: string }) => d.kind === 'series' && d.metric === 'latency')).toBe(true);
    expect(job.body.detections.some((d: { kind: string; metric?: string; value?: number }) => d.kind === 'series' && d.metric === 'request_count' && d.value === 0)).toBe(true);
    // The incident the live pipeline would have opened: the slowdown, joined by the silence right after it.
    expect(job.body.summary.incidents).toBe(1);
    const [incident] = job.body.summary.incident_list;
    expect(incident.started_at).toBe(new Date(T0 + 150 * MINUTE).toISOString());
    expect(incident.signals.map((x: { signal: string }) => x.signal)).toEqual(expect.arrayContaining(['latency', 'traffic']));
    // A backtest creates no live detections.
    expect((await request(ctx.sut.http).get('/detections').set('X-API-Key', ka).expect(200)).body.items).toEqual([]);
    const report = await request(ctx.sut.http).get(`/replay/${started.body.id}/report`).set('X-API-Key', ka).expect(200);
    expect(report.headers['content-type']).toMatch(/text\/html/);
    expect(report.text).toMatch(/^<!doctype html>/);
    // Three charts (requests, latency, errors) drawn by the inlined Chart.js (test/replay-report.e2e-spec.ts opens it).
    expect((report.text.match(/<canvas /g) ?? []).length).toBe(3);
    expect(report.text).toContain('Chart.js');
  });

  it('should validate the request and keep jobs per tenant', async () => {
    const bad = await request(ctx.sut.http).post('/replay').set('X-API-Key', ka).send({}).expect(400);
    expect(bad.body.details[0].field).toBe('events');
    const started = await request(ctx.sut.http).post('/replay').set('X-API-Key', ka).send({ events: traffic(T0, 2, 2) }).expect(202);
    await ctx.sut.app.get(ReplayService).drain();
    await request(ctx.sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', kb).expect(404);
    await request(ctx.sut.http).get(`/replay/${started.body.id}/report`).set('X-API-Key', kb).expect(404);
    await request(ctx.sut.http).get(`/replay/not-a-job`).set('X-API-Key', ka).expect(404);
  });
});

describe('series closing of a backlog in bounded passes', () => {
  const ctx = twoTenants();
  const { a, b, ka, kb } = ctx;

  it('should close a backlog in many small passes exactly as in one', async () => {
    const base = minuteHoursAgo(5);
    // Three services, 3 hours: a latency degradation on one, an outage on another, late events.
    const events = inTimeOrder(
      requests('api', base, 180, 6, (m) => (m >= 120 && m < 135 ? { latency: 8 } : null)),
      requests('web', base, 180, 6, (m) => (m >= 100 && m < 110 ? { count: 0 } : null)),
      requests('jobs', base + 30 * MINUTE, 150, 3),
    );
    // Small batches: each writes its own partial rows, so the backlog holds many more rows than minutes.
    await sendAll(ctx.sut, events, ka, a, 40);
    await sendAll(ctx.sut, events, kb, b, 40);
    const pending = await ctx.sut.database.dataSource.query(`SELECT tenant_id, COUNT(*)::int AS n FROM series_partials WHERE tenant_id IN ($1, $2) GROUP BY tenant_id ORDER BY tenant_id`, [a, b]);
    expect(pending.map((r: { n: number }) => r.n)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(pending[0].n).toBeGreaterThan(500);

    const series = ctx.sut.app.get(SeriesService);
    const repository = ctx.sut.app.get(SeriesRepository);
    const passes = jest.spyOn(repository, 'close');
    const now = Date.now();
    const one = await series.closeTenant(a, now);
    expect(passes).toHaveBeenCalledTimes(1);
    passes.mockClear();
    const many = await series.closeTenant(b, now, { maxPartials: 25 });
    expect(passes.mock.calls.length).toBeGreaterThan(20);
    passes.mockRestore();

    // One pass goes service by service, many passes minute range by minute range: compare as sets.
    const comparable = (ds: DetectionRow[]) =>
      ds
        .map((d) => ({ service: d.service, ts: d.ts.getTime(), metric: d.metric, value: d.value, expected: d.expected, score: d.score }))
        .sort((x, y) => x.ts - y.ts || x.service.localeCompare(y.service) || String(x.metric).localeCompare(String(y.metric)));
    expect(one.some((d) => d.service === 'api' && d.metric === 'latency')).toBe(true);
    expect(one.some((d) => d.service === 'web' && d.metric === 'request_count')).toBe(true);
    expect(comparable(many)).toEqual(comparable(one));
    const stored = async (t: string) => ({
      minutes: await ctx.sut.database.dataSource.query(
        `SELECT service, minute, count, errors, latency_p50, latency_p95, latency_p99, latency_sketch, late, anomalies, bytes_geomean FROM series_minutes WHERE tenant_id = $1 ORDER BY service, minute`,
        [t],
      ),
      states: await ctx.sut.database.dataSource.query(`SELECT service, last_minute, detectors FROM series_state WHERE tenant_id = $1 ORDER BY service`, [t]),
      gaps: await ctx.sut.database.dataSource.query(`SELECT service, gap_from, gap_to FROM series_gaps WHERE tenant_id = $1 ORDER BY service, gap_from`, [t]),
      pending: (await ctx.sut.database.dataSource.query(`SELECT COUNT(*)::int AS n FROM series_partials WHERE tenant_id = $1`, [t]))[0].n,
    });
    const [sa, sb] = [await stored(a), await stored(b)];
    expect(sa.minutes.length).toBeGreaterThan(170 * 3 - 40);
    expect(sb).toEqual(sa);
  });
});

describe('series closing of one service backfilled while its tenant is live', () => {
  const ctx = twoTenants();
  const { a, b, ka, kb } = ctx;

  it('should close the backfilled service as one batch would, whenever the job runs between its batches', async () => {
    const series = ctx.sut.app.get(SeriesService);
    const db = ctx.sut.database.dataSource;
    const now = Math.floor(Date.now() / MINUTE) * MINUTE;
    // Both tenants: a live service up to 10 minutes ago, so each tenant's watermark is 12 minutes ago.
    for (const [t, k] of [[a, ka], [b, kb]]) await sendAll(ctx.sut, requests('live', now - 20 * MINUTE, 10, 5), k, t);
    // Then 90 minutes of another service, ending 15 minutes ago, latency ×6 in minutes 70–75.
    const start = now - 105 * MINUTE;
    const backfill = requests('api', start, 90, 8, (m) => (m >= 70 && m < 76 ? { latency: 6 } : null));
    // Tenant a: in one request, then the job. Tenant b: ten minutes a request, the job after each.
    await sendAll(ctx.sut, backfill, ka, a, backfill.length);
    const once = await series.closeTenant(a);
    const inBatches: DetectionRow[] = [];
    for (let i = 0; i < backfill.length; i += 80) {
      await sendAll(ctx.sut, backfill.slice(i, i + 80), kb, b);
      inBatches.push(...(await series.closeTenant(b)));
    }
    const api = (ds: DetectionRow[]) => ds.filter((d) => d.service === 'api').map((d) => ({ ts: d.ts.getTime(), metric: d.metric, value: d.value, expected: d.expected }));
    expect(api(once).some((d) => d.metric === 'latency' && d.ts === start + 70 * MINUTE)).toBe(true);
    expect(api(once).some((d) => d.metric === 'request_count')).toBe(false);
    expect(api(inBatches)).toEqual(api(once));
    type Minute = { minute: Date; count: number; late: number };
    const minutes = (t: string): Promise<Minute[]> =>
      db.query(`SELECT minute, count, late, latency_p95 FROM series_minutes WHERE tenant_id = $1 AND service = 'api' ORDER BY minute`, [t]);
    const [ma, mb] = [await minutes(a), await minutes(b)];
    expect(mb).toEqual(ma);
    // Closed up to the backfill's newest event minus the grace, each minute whole, none late.
    expect(ma).toHaveLength(88 - 1);
    expect(ma.every((r) => r.count === 8 && r.late === 0)).toBe(true);

    // The hold ends once the service's events stop: when its tenant's event time has moved on by
    // the grace (b: the live service sends its next 10 minutes), or, on a tenant gone quiet, after
    // SERIES_IDLE_SECONDS on the wall clock (a). Then its last minutes close, and the silence after.
    await sendAll(ctx.sut, requests('live', now - 10 * MINUTE, 10, 5), kb, b);
    await series.closeTenant(b);
    await series.closeTenant(a, Date.now() + 301_000);
    for (const t of [a, b]) {
      const after = await minutes(t);
      expect(after.length).toBeGreaterThan(90);
      expect(after.slice(0, 90).every((r) => r.count === 8 && r.late === 0)).toBe(true);
      expect(after.slice(90).every((r) => r.count === 0)).toBe(true);
      expect(after[after.length - 1].minute.getTime()).toBeGreaterThanOrEqual(now - 14 * MINUTE);
    }
  });
});
