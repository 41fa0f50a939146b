import request from 'supertest';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { sleep, waitFor } from './factories/alert-traffic';
import { MINUTE, storeEvidence } from './factories/incident-traffic';
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
const thisMinute = () => Math.floor(Date.now() / MINUTE) * MINUTE;

// The incident policy itself (what opens, escalates and ends an incident) is covered by test/incidents.e2e-spec.ts.
describe('Alerts: messages of incidents', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await new FakeSlack().start();
  });
  afterAll(() => slack.stop());

  it('should alert on evidence stored without the in-process notification (a crash before alerting), at start', async () => {
    const t = newTenantId('rec');
    const cfg = { defaultTenant: t, tenants: [t], tenantSlackWebhooks: { [t]: slack.url(t) }, alertPollSeconds: 600 };
    const second = await startTestApp(cfg);
    try {
      await second.app.get(AlertsService).tick(); // past the start-up pass
      // Stored as the series job stores it, but no one is told: as if the process died right after the commit.
      await storeEvidence(second, t, 'lost', { publish: false });
    } finally {
      await second.close();
    }
    expect(slack.messages(t)).toEqual([]);
    const restarted = await startTestApp(cfg);
    try {
      await waitFor(() => slack.messages(t).length, 30_000, 'the reconciled alert');
      expect(slack.messages(t)[0].body.text).toMatch(/^\[critical\] Incident: lost/);
      await restarted.app.get(AlertsService).tick();
      expect(slack.messages(t)).toHaveLength(1);
    } finally {
      await restarted.close();
    }
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
      await storeEvidence(sut, a, 'quiet', { at: new Date(thisMinute() - 5 * MINUTE) });
      await storeEvidence(sut, a, 'loud');
      await waitFor(() => slack.messages(a).length, 30_000, 'the loud alert');
      await sut.app.get(AlertsService).tick();
      expect((await alertsOf(sut, ka)).map((i) => i.service)).toEqual(['loud']);
      expect(slack.mentioning('quiet')).toEqual([]);

      const ended = await request(sut.http).delete(`/silences/${created.body.id}`).set('X-API-Key', ka).expect(200);
      expect(ended.body).toMatchObject({ id: created.body.id, active: false, ended_at: expect.any(String) });
      // The incident was recorded all along; its next evidence announces it.
      await storeEvidence(sut, a, 'quiet', { at: new Date(thisMinute() - 4 * MINUTE) });
      await waitFor(() => slack.mentioning('Incident: quiet').length, 30_000, 'the quiet service alert');
      expect((await alertsOf(sut, ka, '?service=quiet'))[0]).toMatchObject({ anomaly_count: 2, kind: 'open' });
    });

    it('should stop silencing at its expiry, and silence every service with *', async () => {
      // Long enough for the ingest and a pass to run inside the silence on a busy machine.
      const expiresAt = Date.now() + 5000;
      await post(ka, { service: 'later', expires_at: new Date(expiresAt).toISOString() }).expect(201);
      const all = await post(kb, { service: '*', duration_minutes: 10 }).expect(201);
      await storeEvidence(sut, a, 'later', { at: new Date(thisMinute() - 2 * MINUTE) });
      await sut.app.get(AlertsService).tick();
      expect(await alertsOf(sut, ka, '?service=later')).toEqual([]);
      await sleep(Math.max(0, expiresAt - Date.now()) + 100);
      await storeEvidence(sut, a, 'later', { at: new Date(thisMinute() - MINUTE) });
      await waitFor(() => slack.mentioning('Incident: later').length, 30_000, 'the alert after expiry');

      await storeEvidence(sut, b, 'x');
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
