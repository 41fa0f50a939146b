import { randomUUID } from 'crypto';
import request from 'supertest';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { EventRepository } from '../src/modules/store/event.repository';
import {
  activateModel,
  ingest,
  normalEvents,
  serverErrors,
  sleep,
  slowEvents,
  waitFor,
} from './factories/alert-traffic';
import { httpEvent } from './factories/http-events';
import { FakeSlack } from './support/fake-slack';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

type AlertItem = {
  id: string;
  incident_id: string;
  kind: string;
  service: string;
  severity: string;
  anomaly_count: number;
  scorer: string;
  delivery: { status: string; attempts: number; target: string | null; last_outcome: string | null };
};

const alertsOf = async (app: TestApp, key: string, query = ''): Promise<AlertItem[]> =>
  (await request(app.http).get(`/alerts${query}`).set('X-API-Key', key).expect(200)).body.items;
const kinds = (slack: FakeSlack, name: string) =>
  slack.messages(name).map((m) => m.body.text.split(':')[0].replace(/^\[\w+\] /, ''));

describe('Alerts: policy (through POST /ingest)', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await new FakeSlack().start();
  });
  afterAll(() => slack.stop());

  describe('a burst on one service (acceptance)', () => {
    const t = newTenantId();
    const key = newApiKey();
    let sut: TestApp;
    // Short intervals stand in for the defaults (10 min cooldown, 60 min re-notify); the poll timer is
    // kept out of the way so that delivery within seconds can only come from the anomaly bus.
    const cooldownMs = 2500;
    const renotifyMs = 5000;

    beforeAll(async () => {
      sut = await startTestApp({
        defaultTenant: t,
        tenants: [t],
        tenantApiKeys: { [t]: [key] },
        tenantSlackWebhooks: { [t]: slack.url(t) },
        alertCooldownMinutes: cooldownMs / 60_000,
        alertRenotifyMinutes: renotifyMs / 60_000,
        alertPollSeconds: 600,
      });
      await activateModel(sut, t, ['checkout']);
    });
    afterAll(() => sut.close());

    it('should send one message for 50 anomalies within a minute, one re-notify while it lasts, and one recovery after', async () => {
      // 50 anomalies, each in its own request, five at a time.
      const firstStored = Date.now();
      for (let i = 0; i < 50; i += 5) {
        const results = await Promise.all(Array.from({ length: 5 }, () => ingest(sut, key, serverErrors('checkout'))));
        expect(results.flat().map((r) => r.prediction)).toEqual([-1, -1, -1, -1, -1]);
      }
      const burstMs = Date.now() - firstStored;
      expect(burstMs).toBeLessThan(60_000);
      await waitFor(() => slack.messages(t).length, 30_000, 'the first message');
      expect(slack.messages(t)[0].at - firstStored).toBeLessThan(10_000);

      await waitFor(async () => (await alertsOf(sut, key))[0]?.anomaly_count === 50, 30_000, 'the count to reach 50');
      const [open] = await alertsOf(sut, key);
      expect(open).toMatchObject({
        kind: 'open',
        service: 'checkout',
        severity: 'critical',
        scorer: 'model',
        delivery: { status: 'sent', attempts: 1, target: 'tenant' },
      });
      expect(kinds(slack, t)).toEqual(['Anomaly']);

      // It goes on, an anomaly every 400 ms (well inside the cooldown), until the re-notify interval has passed once.
      while (Date.now() < firstStored + renotifyMs + 1000) {
        await ingest(sut, key, serverErrors('checkout'));
        await sleep(400);
      }
      await waitFor(() => slack.messages(t).length >= 2, 30_000, 'the re-notify');
      expect(kinds(slack, t)).toEqual(['Anomaly', 'Still anomalous']);

      // Quiet for a cooldown: back to normal.
      await ingest(sut, key, normalEvents('checkout', 5));
      await sleep(cooldownMs + 200);
      await sut.app.get(AlertsService).tick();
      await waitFor(() => slack.messages(t).length >= 3, 30_000, 'the recovery');
      expect(kinds(slack, t)).toEqual(['Anomaly', 'Still anomalous', 'Recovered']);

      const items = await alertsOf(sut, key);
      expect(items.map((a) => a.kind)).toEqual(['recovery', 'renotify', 'open']);
      expect(new Set(items.map((a) => a.incident_id))).toEqual(new Set([open.id]));
      const total = items[1].anomaly_count + items[2].anomaly_count;
      expect(items[0].anomaly_count).toBe(total);
      expect(items.every((a) => a.delivery.status === 'sent')).toBe(true);
      expect(slack.messages(t)[2].body.text).toBe(`Recovered: checkout (tenant ${t}) after ${total} anomalies`);
      expect(JSON.stringify(slack.messages(t)[2].body.blocks)).toContain('5 requests scored normal since');

      // A new anomaly after the recovery opens a new alert.
      await ingest(sut, key, serverErrors('checkout'));
      await waitFor(() => slack.messages(t).length >= 4, 30_000, 'a new alert');
      expect(kinds(slack, t)).toEqual(['Anomaly', 'Still anomalous', 'Recovered', 'Anomaly']);
      expect((await alertsOf(sut, key))[0]).toMatchObject({ kind: 'open', anomaly_count: 1 });
    });
  });

  describe('scorers, severity, direction, reconciliation', () => {
    const [a, b, c] = [newTenantId('sc'), newTenantId('sev'), newTenantId('dir')];
    const [ka, kb, kc] = [newApiKey(), newApiKey(), newApiKey()];
    let sut: TestApp;

    beforeAll(async () => {
      sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: a,
        tenants: [a, b, c],
        tenantApiKeys: { [a]: [ka], [b]: [kb], [c]: [kc] },
        tenantSlackWebhooks: { [a]: slack.url(a), [b]: slack.url(b), [c]: slack.url(c) },
        alertMinSeverity: 'critical',
        alertDirection: 'faster',
        alertPollSeconds: 0.2,
      });
    });
    afterAll(() => sut.close());

    it('should alert the same for anomalies scored by a cold-start baseline and by a model', async () => {
      await activateModel(sut, a, ['modelled']);
      await ingest(sut, ka, normalEvents('fresh'));
      await ingest(sut, ka, [...serverErrors('fresh'), ...serverErrors('modelled')]);
      await waitFor(() => slack.messages(a).length >= 2, 30_000, 'two messages');
      const items = await waitFor(
        async () => {
          const list = await alertsOf(sut, ka);
          return list.every((i) => i.delivery.status === 'sent') ? list : undefined;
        },
        5000,
        'both recorded as sent',
      );
      expect(items.map((i) => [i.service, i.scorer, i.kind, i.delivery.status]).sort()).toEqual([
        ['fresh', 'baseline', 'open', 'sent'],
        ['modelled', 'model', 'open', 'sent'],
      ]);
      const context = slack.messages(a).map((m) => JSON.stringify(m.body.blocks));
      expect(context.some((x) => x.includes('Scored by cold-start baseline'))).toBe(true);
      expect(context.some((x) => x.includes('Scored by model v'))).toBe(true);
    });

    it('should leave out anomalies below ALERT_MIN_SEVERITY', async () => {
      await ingest(sut, kb, normalEvents('api'));
      // Scored against the same 40 events: 130 ms is info, 135 ms warning; a rare server error is critical.
      const scored = await ingest(sut, kb, [
        httpEvent({ service: 'api', durationMs: 130 }),
        httpEvent({ service: 'api', durationMs: 135 }),
      ]);
      expect(scored.map((s) => s.prediction)).toEqual([-1, -1]);
      await sut.app.get(AlertsService).tick();
      expect(await alertsOf(sut, kb)).toEqual([]);
      await ingest(sut, kb, serverErrors('api'));
      await waitFor(() => slack.messages(b).length, 30_000, 'a message');
      expect(await alertsOf(sut, kb)).toEqual([expect.objectContaining({ severity: 'critical', anomaly_count: 1 })]);
      const prom = (await request(sut.http).get('/prom').expect(200)).text;
      expect(prom).toMatch(new RegExp(`anomaly_detector_alert_anomalies_total\\{tenant="${b}",outcome="below_severity"\\} 2`));
    });

    it('should leave out latency anomalies in the other ALERT_DIRECTION, and alert on errors whatever the direction', async () => {
      await ingest(sut, kc, normalEvents('api'));
      expect((await ingest(sut, kc, slowEvents('api')))[0].prediction).toBe(-1);
      await sut.app.get(AlertsService).tick();
      expect(await alertsOf(sut, kc)).toEqual([]);
      await ingest(sut, kc, serverErrors('api'));
      await waitFor(() => slack.messages(c).length, 30_000, 'a message');
      expect((await alertsOf(sut, kc)).map((i) => i.anomaly_count)).toEqual([1]);
    });

    it('should alert on anomalies stored without the in-process notification (a crash before alerting), at start', async () => {
      const t = newTenantId('rec');
      const second = await startTestApp({
        defaultTenant: t,
        tenants: [t],
        tenantSlackWebhooks: { [t]: slack.url(t) },
        alertPollSeconds: 600,
      });
      try {
        await second.app.get(AlertsService).tick(); // past the start-up pass
        // Stored as the ingest path stores them, but no one is told: as if the process died right after the commit.
        const ts = new Date();
        await second.app.get(EventRepository).insertScored(
          t,
          [
            {
              id: 'e1',
              service: 'lost',
              ts,
              source: 'api',
              durationMs: 100,
              statusCode: 503,
              bytes: 10,
              metadata: {},
              score: -0.3,
              prediction: -1,
              modelVersion: null,
              baseline: 'ready',
            },
          ],
          [
            {
              id: randomUUID(),
              kind: 'event',
              eventId: 'e1',
              service: 'lost',
              ts,
              score: -0.3,
              prediction: -1,
              driftAlert: false,
              modelVersion: null,
              baseline: true,
              explanation: null,
              metadata: {},
              durationMs: 100,
              statusCode: 503,
            },
          ],
        );
      } finally {
        await second.close();
      }
      expect(slack.messages(t)).toEqual([]);
      const restarted = await startTestApp({
        defaultTenant: t,
        tenants: [t],
        tenantSlackWebhooks: { [t]: slack.url(t) },
        alertPollSeconds: 600,
      });
      try {
        await waitFor(() => slack.messages(t).length, 30_000, 'the reconciled alert');
        expect(slack.messages(t)[0].body.text).toMatch(/^\[critical\] Anomaly: lost/);
        await restarted.app.get(AlertsService).tick();
        expect(slack.messages(t)).toHaveLength(1);
      } finally {
        await restarted.close();
      }
    });
  });

  describe('silences', () => {
    const [a, b] = [newTenantId('sa'), newTenantId('sb')];
    const [ka, kb] = [newApiKey(), newApiKey()];
    let sut: TestApp;
    const post = (key: string, body: object) => request(sut.http).post('/silences').set('X-API-Key', key).send(body);

    beforeAll(async () => {
      sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: a,
        tenants: [a, b],
        tenantApiKeys: { [a]: [ka], [b]: [kb] },
        tenantSlackWebhooks: { [a]: slack.url(a), [b]: slack.url(b) },
        alertPollSeconds: 0.2,
      });
      await activateModel(sut, a, ['quiet', 'loud', 'later']);
    });
    afterAll(() => sut.close());

    it('should validate a silence: one of expires_at and duration_minutes, in the future, known fields only', async () => {
      const none = await post(ka, { service: 'quiet' }).expect(400);
      expect(none.body).toMatchObject({
        code: 'VALIDATION_FAILED',
        details: [{ field: 'expires_at', reason: expect.any(String) }],
      });
      await post(ka, {
        service: 'quiet',
        duration_minutes: 5,
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      }).expect(400);
      const past = await post(ka, { service: 'quiet', expires_at: '2020-01-01T00:00:00Z' }).expect(400);
      expect(past.body.details[0].field).toBe('expires_at');
      const bad = await post(ka, { service: 'no spaces', duration_minutes: 0, extra: 1 }).expect(400);
      expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
        'duration_minutes',
        'extra',
        'service',
      ]);
      const id = await request(sut.http).delete('/silences/not-a-uuid').set('X-API-Key', ka).expect(400);
      expect(id.body.code).toBe('VALIDATION_FAILED');
    });

    it('should send nothing for a silenced service until the silence is deleted, and alert the others', async () => {
      const created = await post(ka, { service: 'quiet', duration_minutes: 60, reason: 'maintenance' }).expect(201);
      expect(created.body).toMatchObject({
        service: 'quiet',
        reason: 'maintenance',
        active: true,
        ended_at: null,
        tenant: a,
      });
      await ingest(sut, ka, [...serverErrors('quiet', 3), ...serverErrors('loud')]);
      await waitFor(() => slack.messages(a).length, 30_000, 'the loud alert');
      await sut.app.get(AlertsService).tick();
      expect((await alertsOf(sut, ka)).map((i) => i.service)).toEqual(['loud']);
      expect(slack.mentioning('quiet')).toEqual([]);

      const ended = await request(sut.http).delete(`/silences/${created.body.id}`).set('X-API-Key', ka).expect(200);
      expect(ended.body).toMatchObject({ id: created.body.id, active: false, ended_at: expect.any(String) });
      await ingest(sut, ka, serverErrors('quiet'));
      await waitFor(() => slack.mentioning('Anomaly: quiet').length, 30_000, 'the quiet service alert');
      expect((await alertsOf(sut, ka, '?service=quiet'))[0]).toMatchObject({ anomaly_count: 1, kind: 'open' });
    });

    it('should stop silencing at its expiry, and silence every service with *', async () => {
      // Long enough for the ingest and a pass to run inside the silence on a busy machine.
      const expiresAt = Date.now() + 5000;
      await post(ka, { service: 'later', expires_at: new Date(expiresAt).toISOString() }).expect(201);
      const all = await post(kb, { service: '*', duration_minutes: 10 }).expect(201);
      await ingest(sut, ka, serverErrors('later'));
      await sut.app.get(AlertsService).tick();
      expect(await alertsOf(sut, ka, '?service=later')).toEqual([]);
      await sleep(Math.max(0, expiresAt - Date.now()) + 100);
      await ingest(sut, ka, serverErrors('later'));
      await waitFor(() => slack.mentioning('Anomaly: later').length, 30_000, 'the alert after expiry');

      await ingest(sut, kb, normalEvents('x'));
      await ingest(sut, kb, serverErrors('x'));
      await sut.app.get(AlertsService).tick();
      expect(await alertsOf(sut, kb)).toEqual([]);
      const listed = await request(sut.http).get('/silences?active=true').set('X-API-Key', kb).expect(200);
      expect(listed.body).toEqual({
        items: [expect.objectContaining({ id: all.body.id, service: '*', active: true })],
        nextCursor: null,
      });
    });

    it('should list silences newest first with a cursor', async () => {
      const res = await request(sut.http).get('/silences?limit=1').set('X-API-Key', ka).expect(200);
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0].service).toBe('later');
      const next = await request(sut.http)
        .get(`/silences?limit=5&cursor=${res.body.nextCursor}`)
        .set('X-API-Key', ka)
        .expect(200);
      expect(next.body.items.map((s: { service: string; active: boolean }) => [s.service, s.active])).toEqual([
        ['quiet', false],
      ]);
      await request(sut.http).get('/silences?cursor=bm9wZQ').set('X-API-Key', ka).expect(400);
    });

    it('should not list, end or apply the silences of another tenant', async () => {
      const mine = await post(ka, { service: 'loud', duration_minutes: 30 }).expect(201);
      const theirs = await request(sut.http).get('/silences').set('X-API-Key', kb).expect(200);
      expect(theirs.body.items.map((s: { id: string }) => s.id)).not.toContain(mine.body.id);
      expect(theirs.body.items.every((s: { tenant: string }) => s.tenant === b)).toBe(true);
      const del = await request(sut.http).delete(`/silences/${mine.body.id}`).set('X-API-Key', kb).expect(404);
      expect(del.body.code).toBe('SILENCE_NOT_FOUND');
      await request(sut.http).get(`/silences?tenant=${a}`).set('X-API-Key', kb).expect(403);
      await request(sut.http)
        .post(`/silences?tenant=${a}`)
        .set('X-API-Key', kb)
        .send({ service: 'loud', duration_minutes: 5 })
        .expect(403);
      const still = await request(sut.http).get('/silences?active=true&service=loud').set('X-API-Key', ka).expect(200);
      expect(still.body.items.map((s: { id: string }) => s.id)).toEqual([mine.body.id]);
    });

    it('should document /alerts and /silences in the OpenAPI document', async () => {
      const doc = (await request(sut.http).get('/docs-json').expect(200)).body;
      expect(Object.keys(doc.paths['/alerts'])).toEqual(['get']);
      expect(Object.keys(doc.paths['/silences']).sort()).toEqual(['get', 'post']);
      expect(Object.keys(doc.paths['/silences/{id}'])).toEqual(['delete']);
      expect(doc.paths['/silences/{id}'].delete.responses['404']).toBeDefined();
      expect(doc.components.schemas.AlertDto.properties.delivery).toBeDefined();
      expect(doc.components.schemas.CreateSilenceDto.required).toEqual(['service']);
    });

    it('should not return the alerts of another tenant', async () => {
      expect((await alertsOf(sut, ka)).length).toBeGreaterThan(0);
      expect(await alertsOf(sut, kb)).toEqual([]);
      await request(sut.http).get(`/alerts?tenant=${a}`).set('X-API-Key', kb).expect(403);
    });
  });
});
