import request from 'supertest';
import { SeriesService } from '../src/modules/detection/series.service';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { waitFor } from './factories/alert-traffic';
import { MINUTE, closeAndAlert, inTimeOrder, minuteHoursAgo, requests, sendAll, storeEvidence } from './factories/incident-traffic';
import { FakeSlack } from './support/fake-slack';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

type Incident = {
  id: string;
  service: string;
  status: string;
  severity: string;
  started_at: string;
  detected_at: string;
  ended_at: string | null;
  signals: { signal: string; summary: string; first_at: string }[];
  anomaly_count: number;
};

const incidentsOf = async (app: TestApp, key?: string, query = ''): Promise<Incident[]> => {
  const req = request(app.http).get(`/incidents${query}`);
  if (key) req.set('X-API-Key', key);
  return (await req.expect(200)).body.items;
};
const kinds = (slack: FakeSlack, name: string) => slack.messages(name).map((m) => m.body.text.split(':')[0].replace(/^\[\w+\] /, ''));
const iso = (t: number) => new Date(t).toISOString();

describe('Incidents (event time, through POST /ingest)', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await new FakeSlack().start();
  });
  afterAll(() => slack.stop());

  describe('one tenant, backfilled logs', () => {
    const t = newTenantId('inc');
    let sut: TestApp;
    beforeAll(async () => {
      sut = await startTestApp({
        defaultTenant: t,
        tenants: [t],
        tenantSlackWebhooks: { [t]: slack.url(t) },
        seriesCloseIntervalSeconds: 0,
        alertPollSeconds: 600,
      });
    });
    afterAll(() => sut.close());

    it('should page once for an error burst, since its first minute, and recover in event time', async () => {
      const base = minuteHoursAgo(5);
      const logs = inTimeOrder(
        requests('checkout', base, 100, 10, (m) => (m >= 40 && m < 44 ? { errorShare: 0.4 } : null)),
        requests('search', base, 100, 10),
      );
      await sendAll(sut, logs);
      await closeAndAlert(sut, t);
      await waitFor(() => slack.messages(t).length >= 2, 10_000, `the opening and the recovery (got ${JSON.stringify(await incidentsOf(sut))})`);
      const [inc, ...others] = await incidentsOf(sut);
      expect(others).toEqual([]);
      expect(inc).toMatchObject({ service: 'checkout', status: 'resolved', severity: 'critical', started_at: iso(base + 40 * MINUTE) });
      expect(inc.signals.map((s) => s.signal)).toContain('errors');
      expect(new Date(inc.detected_at).getTime() - (base + 40 * MINUTE)).toBeLessThanOrEqual(2 * MINUTE);
      expect(new Date(inc.ended_at!).getTime()).toBeGreaterThan(base + 44 * MINUTE);
      expect(kinds(slack, t)).toEqual(['Incident', 'Recovered']);
      const opening = slack.messages(t)[0].body;
      expect(opening.text).toContain(`since ${iso(base + 40 * MINUTE)}`);
      expect(opening.text).toMatch(/server errors at 40% of 10 requests over 1 min \(usual 0\.\d+%\)/);
      expect(JSON.stringify(opening.blocks)).toContain(`incident \`${inc.id}\``);

      const detail = (await request(sut.http).get(`/incidents/${inc.id}`).expect(200)).body;
      expect(detail.anomalies.some((d: { kind: string; metric: string }) => d.kind === 'series' && d.metric === 'error_rate')).toBe(true);
      const events = detail.anomalies.filter((d: { kind: string }) => d.kind === 'event');
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((d: { timestamp: string }) => d.timestamp >= iso(base + 39 * MINUTE) && d.timestamp < inc.ended_at!)).toBe(true);
      expect(detail.anomaly_count).toBe(detail.anomalies.length);
    });

    it('should not page for a single slow request or a single server error', async () => {
      const base = minuteHoursAgo(3);
      const logs = requests('lonely', base, 60, 4, (m) => (m === 45 ? { errorShare: 0.25 } : null));
      (logs[50 * 4 + 1].performance as { duration_ms: number }).duration_ms = 5000; // one slow request among its minute's 4
      await sendAll(sut, logs);
      await closeAndAlert(sut, t);
      const flagged = (await request(sut.http).get('/detections?service=lonely&kind=event').expect(200)).body.items;
      expect(flagged.length).toBeGreaterThan(0);
      expect(await incidentsOf(sut, undefined, '?service=lonely')).toEqual([]);
    });

    it("should move a quiet tenant's watermark on by the wall clock only after SERIES_IDLE_SECONDS", async () => {
      const q = newTenantId('quiet');
      const app = await startTestApp({ defaultTenant: q, tenants: [q], seriesCloseIntervalSeconds: 0, alertPollSeconds: 600, seriesIdleSeconds: 300 });
      try {
        const base = minuteHoursAgo(2);
        await sendAll(app, requests('api', base, 60, 10));
        const series = app.app.get(SeriesService);
        expect(await series.closeTenant(q)).toEqual([]);
        const mark = await series.watermark(q);
        expect(mark.watermark!.getTime()).toBe(mark.maxEventTs!.getTime() - 120_000);
        // Less than the idle time later: nothing moves.
        expect(await series.closeTenant(q, Date.now() + 200_000)).toEqual([]);
        // Ten minutes past the idle time: ten minutes of event time pass with no requests.
        const found = await series.closeTenant(q, Date.now() + 300_000 + 10 * MINUTE);
        const drop = found.filter((d) => d.metric === 'request_count');
        expect(drop[0]).toMatchObject({ service: 'api', value: 0 });
        expect((drop[0].explanation as { summary: string }).summary).toMatch(/^no requests for \d+ min/);
      } finally {
        await app.close();
      }
    });
  });

  it('should open the same incidents and detections whether the logs arrive paced or at full speed', async () => {
    const [fast, paced] = [newTenantId('fast'), newTenantId('paced')];
    const sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: fast, tenants: [fast, paced], seriesCloseIntervalSeconds: 0, alertPollSeconds: 600 });
    try {
      const base = minuteHoursAgo(6);
      const logs = inTimeOrder(
        requests('a', base, 150, 12, (m) => (m >= 100 && m < 106 ? { latency: 6 } : null)),
        requests('b', base, 150, 10, (m) => (m >= 110 && m < 130 ? { count: 0 } : null)),
        requests('c', base, 150, 8, (m) => (m >= 120 && m < 130 ? { bytes: 20 } : null)),
      );
      // Full speed: one backfill, then the jobs.
      await sendAll(sut, logs, undefined, fast);
      await closeAndAlert(sut, fast);
      // Paced: minute by minute, with the jobs running in between.
      for (let m = 0; m < 150; m++) {
        const upTo = iso(base + (m + 1) * MINUTE);
        const from = iso(base + m * MINUTE);
        const chunk = logs.filter((e) => String(e.timestamp) >= from && String(e.timestamp) < upTo);
        if (chunk.length) await sendAll(sut, chunk, undefined, paced);
        await closeAndAlert(sut, paced);
      }
      const detections = async (tenant: string) =>
        (await request(sut.http).get(`/detections?kind=series&limit=1000&tenant=${tenant}`).expect(200)).body.items.map(
          (d: { service: string; metric: string; timestamp: string; value: number }) => `${d.service} ${d.metric} ${d.timestamp} ${d.value.toFixed(3)}`,
        ).sort();
      const incidents = async (tenant: string) =>
        (await incidentsOf(sut, undefined, `?tenant=${tenant}`)).map((i) => ({
          service: i.service,
          started_at: i.started_at,
          detected_at: i.detected_at,
          ended_at: i.ended_at,
          severity: i.severity,
          signals: i.signals.map((s) => s.signal).sort(),
          anomaly_count: i.anomaly_count,
        }));
      const found = await incidents(fast);
      expect(found.map((i) => i.service).sort()).toEqual(['a', 'b', 'c']);
      expect(await incidents(paced)).toEqual(found);
      expect(await detections(paced)).toEqual(await detections(fast));
      const byService = Object.fromEntries(found.map((i) => [i.service, i]));
      expect(byService.a.started_at).toBe(iso(base + 100 * MINUTE));
      expect(byService.a.signals).toContain('latency');
      expect(byService.b.signals).toContain('traffic');
      expect(new Date(byService.b.detected_at).getTime() - (base + 110 * MINUTE)).toBeLessThanOrEqual(5 * MINUTE);
      expect(byService.c.signals).toContain('payload');
    } finally {
      await sut.close();
    }
    // 150 paced rounds of ingest + series closing + alerting: about 25 s on an idle machine, over the
    // default minute with a CPU burner and a load average near 10 (it failed once so).
  }, 300_000);

  it('should record a long silence as a gap instead of walking every empty minute', async () => {
    const t = newTenantId('gap');
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0, alertPollSeconds: 600 });
    try {
      const base = minuteHoursAgo(30);
      await sendAll(sut, requests('api', base, 40, 10));
      await sendAll(sut, requests('api', base + 24 * 60 * MINUTE, 10, 10));
      await sut.app.get(SeriesService).closeTenant(t);
      const db = sut.database.dataSource;
      const [{ n }] = await db.query(`SELECT COUNT(*)::int AS n FROM series_minutes WHERE tenant_id = $1`, [t]);
      expect(n).toBeLessThanOrEqual(40 + 240 + 10);
      const gaps = await db.query(`SELECT gap_from, gap_to FROM series_gaps WHERE tenant_id = $1`, [t]);
      expect(gaps).toEqual([{ gap_from: new Date(base + (40 + 240) * MINUTE), gap_to: new Date(base + 24 * 60 * MINUTE) }]);
    } finally {
      await sut.close();
    }
  });

  it('should merge late events within the grace period and count later ones as late without re-scoring', async () => {
    const t = newTenantId('late');
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], seriesCloseIntervalSeconds: 0, seriesGraceSeconds: 120 });
    const series = sut.app.get(SeriesService);
    try {
      const base = minuteHoursAgo(1);
      await sendAll(sut, requests('svc', base, 5, 10)); // newest event in minute 4: minutes 0 and 1 close
      await series.closeTenant(t);
      await sendAll(sut, requests('svc', base + 4 * MINUTE, 1, 5)); // minute 4 is open: merged
      await sendAll(sut, requests('svc', base + 1 * MINUTE, 1, 3)); // minute 1 closed already: late
      await sendAll(sut, requests('svc', base + 5 * MINUTE, 2, 10)); // newest in minute 6: minutes 2 and 3 close
      await series.closeTenant(t);
      const rows = await sut.database.dataSource.query(`SELECT count, late FROM series_minutes WHERE tenant_id = $1 ORDER BY minute`, [t]);
      expect(rows.map((r: { count: number; late: number }) => [r.count, r.late])).toEqual([
        [10, 0],
        [13, 3],
        [10, 0],
        [10, 0],
      ]);
    } finally {
      await sut.close();
    }
  });

  describe('API, silences and severity', () => {
    const [a, b] = [newTenantId('ia'), newTenantId('ib')];
    const [ka, kb] = [newApiKey(), newApiKey()];
    let sut: TestApp;
    beforeAll(async () => {
      sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: a,
        tenants: [a, b],
        tenantApiKeys: { [a]: [ka], [b]: [kb] },
        tenantSlackWebhooks: { [a]: slack.url(a), [b]: slack.url(b) },
        alertMinSeverity: 'critical',
        alertPollSeconds: 600,
        seriesCloseIntervalSeconds: 0,
      });
    });
    afterAll(() => sut.close());

    it('should list incidents newest first with a cursor, and show one with its anomalies', async () => {
      const now = Math.floor(Date.now() / MINUTE) * MINUTE;
      for (const [i, s] of ['s1', 's2', 's3'].entries()) await storeEvidence(sut, a, s, { at: new Date(now - (3 - i) * MINUTE) });
      await sut.app.get(AlertsService).tick();
      const first = (await request(sut.http).get('/incidents?limit=2').set('X-API-Key', ka).expect(200)).body;
      expect(first.items.map((i: Incident) => i.service)).toEqual(['s3', 's2']);
      const next = (await request(sut.http).get(`/incidents?limit=2&cursor=${first.nextCursor}`).set('X-API-Key', ka).expect(200)).body;
      expect(next).toEqual({ items: [expect.objectContaining({ service: 's1', status: 'open' })], nextCursor: null });
      const one = (await request(sut.http).get(`/incidents/${next.items[0].id}`).set('X-API-Key', ka).expect(200)).body;
      expect(one).toMatchObject({ service: 's1', anomaly_count: 1, anomalies: [expect.objectContaining({ kind: 'series', metric: 'request_count' })] });
      const missing = await request(sut.http).get('/incidents/00000000-0000-4000-8000-000000000000').set('X-API-Key', ka).expect(404);
      expect(missing.body.code).toBe('INCIDENT_NOT_FOUND');
      const bad = await request(sut.http).get('/incidents/nope').set('X-API-Key', ka).expect(400);
      expect(bad.body.details[0].field).toBe('id');
      await request(sut.http).get('/incidents?status=maybe').set('X-API-Key', ka).expect(400);
    });

    it('should not return the incidents of another tenant', async () => {
      const [mine] = await incidentsOf(sut, ka);
      expect(await incidentsOf(sut, kb)).toEqual([]);
      const other = await request(sut.http).get(`/incidents/${mine.id}`).set('X-API-Key', kb).expect(404);
      expect(other.body.code).toBe('INCIDENT_NOT_FOUND');
      await request(sut.http).get(`/incidents?tenant=${a}`).set('X-API-Key', kb).expect(403);
    });

    it('should record an incident below ALERT_MIN_SEVERITY without a message, and announce it once it escalates', async () => {
      const at = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
      await storeEvidence(sut, b, 'api', { severity: 'warning', at: new Date(at) });
      await sut.app.get(AlertsService).tick();
      expect(await incidentsOf(sut, kb)).toEqual([expect.objectContaining({ service: 'api', severity: 'warning', status: 'open' })]);
      expect(slack.messages(b)).toEqual([]);
      await storeEvidence(sut, b, 'api', { severity: 'critical', at: new Date(at + MINUTE) });
      await sut.app.get(AlertsService).tick();
      await waitFor(() => slack.messages(b).length, 10_000, 'the announcement');
      expect(kinds(slack, b)).toEqual(['Incident']);
      expect(await incidentsOf(sut, kb)).toEqual([expect.objectContaining({ severity: 'critical', status: 'open' })]);
    });

    it('should record the incident of a silenced service without a message', async () => {
      await request(sut.http).post('/silences').set('X-API-Key', ka).send({ service: 'muted', duration_minutes: 30 }).expect(201);
      const before = slack.messages(a).length;
      await storeEvidence(sut, a, 'muted');
      await sut.app.get(AlertsService).tick();
      expect(await incidentsOf(sut, ka, '?service=muted')).toEqual([expect.objectContaining({ status: 'open' })]);
      expect(slack.messages(a).length).toBe(before);
      expect(slack.mentioning('muted')).toEqual([]);
    });

    it('should document /incidents in the OpenAPI document', async () => {
      const doc = (await request(sut.http).get('/docs-json').expect(200)).body;
      expect(Object.keys(doc.paths['/incidents'])).toEqual(['get']);
      expect(doc.paths['/incidents/{id}'].get.responses['404']).toBeDefined();
      expect(doc.components.schemas.IncidentDto.properties.signals).toBeDefined();
    });
  });
});
