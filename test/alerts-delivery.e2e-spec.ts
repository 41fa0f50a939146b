import request from 'supertest';
import { planIncidents } from '../src/modules/alerts/incident-policy';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { AppConfig } from '../src/config/app-config';
import { AlertRepository } from '../src/modules/store/alert.repository';
import { IncidentRepository } from '../src/modules/store/incident.repository';
import { AlertItem, alertsOf, oneAnomaly, settled } from './factories/alert-delivery';
import { sleep, waitFor } from './factories/alert-traffic';
import { storeEvidence } from './factories/incident-traffic';
import { FakeSlack, ReceivedMessage } from './support/fake-slack';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const alertIdIn = (m: ReceivedMessage) => /alert `([0-9a-f-]{36})`/.exec(JSON.stringify(m.body.blocks))?.[1];
const prom = async (app: TestApp) => (await request(app.http).get('/prom').expect(200)).text;

/** Stores evidence of incidents the way the series job does, but without telling anyone (no bus). */
async function storeQuietly(app: TestApp, tenant: string, services: string[]): Promise<void> {
  for (const service of services) await storeEvidence(app, tenant, service, { publish: false });
}

describe('Alerts: delivery (outbox)', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await new FakeSlack().start();
  });
  afterAll(() => slack.stop());

  describe('Slack replies', () => {
    const tenants = Array.from({ length: 8 }, () => newTenantId('d'));
    const keys = Object.fromEntries(tenants.map((t) => [t, newApiKey()]));
    const unconfigured = tenants[7];
    let sut: TestApp;
    let next = 0;
    /** A fresh tenant of the app, with its own webhook on the fake. */
    const tenant = () => {
      const t = tenants[next++];
      return { t, key: keys[t] };
    };

    beforeAll(async () => {
      sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: tenants[0],
        tenants,
        tenantApiKeys: Object.fromEntries(tenants.map((t) => [t, [keys[t]]])),
        tenantSlackWebhooks: Object.fromEntries(
          tenants.filter((t) => t !== unconfigured).map((t) => [t, slack.url(t)]),
        ),
        alertPollSeconds: 0.2,
        alertRetryBaseSeconds: 0.05,
        alertMaxAttempts: 3,
        slackTimeoutMs: 300,
      });
    });
    afterAll(() => sut.close());

    it('should deliver exactly once after the Retry-After when Slack answers 429 then 200 (acceptance)', async () => {
      const { t, key } = tenant();
      slack.script(t, { status: 429, retryAfter: 1 });
      await oneAnomaly(sut, key);
      const sent = await settled(sut, key, 'sent');
      expect(sent.delivery).toMatchObject({
        attempts: 2,
        last_outcome: 'ok',
        last_error: null,
        uncertain_attempts: 0,
        target: 'tenant',
      });
      const [limited, delivered] = slack.messages(t);
      expect([limited.reply, delivered.reply]).toEqual([429, 200]);
      expect(delivered.at - limited.at).toBeGreaterThanOrEqual(1000);
      // Not held back much longer than asked (generous: the machine may be busy).
      expect(delivered.at - limited.at).toBeLessThan(10_000);
      await sleep(500);
      await sut.app.get(AlertsService).tick();
      expect(slack.messages(t)).toHaveLength(2);
      expect(slack.messages(t).filter((m) => m.reply === 200)).toHaveLength(1);
      const text = await prom(sut);
      expect(text).toContain(`anomaly_detector_alerts_sent_total{tenant="${t}",kind="open"} 1`);
      expect(text).toContain(`anomaly_detector_alert_delivery_attempts_total{tenant="${t}",outcome="rate_limited"} 1`);
      expect(text).toContain(`anomaly_detector_alerts_backlog{tenant="${t}"} 0`);
    });

    it('should fail at once, without retrying, when Slack rejects the message (400 invalid_payload, 404 no_service)', async () => {
      for (const status of [400, 404] as const) {
        const { t, key } = tenant();
        slack.script(t, { status });
        await oneAnomaly(sut, key);
        const failed = await settled(sut, key, 'failed');
        expect(failed.delivery).toMatchObject({
          attempts: 1,
          last_outcome: 'rejected',
          last_error: status === 400 ? '400 invalid_payload' : '404 no_service',
        });
        await sleep(300);
        await sut.app.get(AlertsService).tick();
        expect(slack.messages(t)).toHaveLength(1);
        expect(await prom(sut)).toContain(`anomaly_detector_alerts_failed_total{tenant="${t}",kind="open"} 1`);
      }
    });

    it('should retry a server error with backoff until delivered', async () => {
      const { t, key } = tenant();
      slack.script(t, { status: 500 });
      await oneAnomaly(sut, key);
      const sent = await settled(sut, key, 'sent');
      expect(sent.delivery).toMatchObject({ attempts: 2, last_outcome: 'ok' });
      expect(slack.messages(t).map((m) => m.reply)).toEqual([500, 200]);
    });

    it('should mark a message failed after ALERT_MAX_ATTEMPTS', async () => {
      const { t, key } = tenant();
      slack.script(t, { status: 500 }, { status: 503 }, { status: 500 });
      await oneAnomaly(sut, key);
      const failed = await settled(sut, key, 'failed');
      expect(failed.delivery).toMatchObject({ attempts: 3, last_outcome: 'server_error' });
      expect(failed.delivery.last_error).toMatch(/gave up after 3 attempts/);
      expect(slack.messages(t).map((m) => m.reply)).toEqual([500, 503, 500]);
    });

    it('should retry after a timeout (Slack may have posted it) and count that retry', async () => {
      const { t, key } = tenant();
      slack.script(t, { hang: true });
      await oneAnomaly(sut, key);
      const sent = await settled(sut, key, 'sent');
      expect(sent.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 1, last_outcome: 'ok' });
      expect(slack.messages(t).map((m) => m.reply)).toEqual(['hang', 200]);
      expect(await prom(sut)).toContain(`anomaly_detector_alerts_retried_after_timeout_total{tenant="${t}"} 1`);
    });

    it('should record an alert as skipped when the tenant has no Slack webhook', async () => {
      const key = keys[unconfigured];
      await oneAnomaly(sut, key);
      const skipped = await settled(sut, key, 'skipped');
      expect(skipped.delivery).toMatchObject({ attempts: 1, last_outcome: 'not_configured', target: null });
      expect(slack.mentioning(unconfigured)).toEqual([]);
    });

    it('should list alerts newest first with a cursor, filtered by status, kind and service', async () => {
      const { t, key } = tenant();
      slack.script(t, { status: 404 });
      await oneAnomaly(sut, key, 'one');
      await settled(sut, key, 'failed');
      await oneAnomaly(sut, key, 'two');
      await settled(sut, key, 'sent');
      const first = await request(sut.http).get('/alerts?limit=1').set('X-API-Key', key).expect(200);
      expect(first.body.items.map((a: AlertItem) => a.service)).toEqual(['two']);
      const second = await request(sut.http)
        .get(`/alerts?limit=1&cursor=${first.body.nextCursor}`)
        .set('X-API-Key', key)
        .expect(200);
      expect(second.body.items.map((a: AlertItem) => a.service)).toEqual(['one']);
      expect(second.body.nextCursor).toBeNull();
      expect((await alertsOf(sut, key, '?status=failed')).map((a) => a.service)).toEqual(['one']);
      expect((await alertsOf(sut, key, '?service=two&kind=open')).map((a) => a.delivery.status)).toEqual(['sent']);
      expect(await alertsOf(sut, key, '?kind=recovery')).toEqual([]);
      const bad = await request(sut.http).get('/alerts?status=lost&limit=0').set('X-API-Key', key).expect(400);
      expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['limit', 'status']);
    });
  });

  describe('webhook per tenant', () => {
    it("should send to the tenant's own webhook, else to SLACK_WEBHOOK_URL", async () => {
      const [own, shared] = [newTenantId('own'), newTenantId('shared')];
      const [ko, ks] = [newApiKey(), newApiKey()];
      const global = `global-${own}`;
      const sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: own,
        tenants: [own, shared],
        tenantApiKeys: { [own]: [ko], [shared]: [ks] },
        slackWebhookUrl: slack.url(global),
        tenantSlackWebhooks: { [own]: slack.url(own) },
        alertPollSeconds: 0.2,
      });
      try {
        await oneAnomaly(sut, ko);
        await oneAnomaly(sut, ks);
        expect((await settled(sut, ko, 'sent')).delivery.target).toBe('tenant');
        expect((await settled(sut, ks, 'sent')).delivery.target).toBe('default');
        expect(slack.messages(own).map((m) => m.body.text)).toEqual([expect.stringContaining(`(tenant ${own})`)]);
        expect(slack.messages(global).map((m) => m.body.text)).toEqual([expect.stringContaining(`(tenant ${shared})`)]);
      } finally {
        await sut.close();
      }
    });
  });

  describe('restarts and replicas', () => {
    const config = (t: string, key: string, over: Partial<AppConfig> = {}): Partial<AppConfig> => ({
      defaultTenant: t,
      tenants: [t],
      tenantApiKeys: { [t]: [key] },
      tenantSlackWebhooks: { [t]: slack.url(t) },
      alertPollSeconds: 0.2,
      ...over,
    });

    it('should deliver once after a restart in the middle of a retry', async () => {
      const t = newTenantId('rs');
      const key = newApiKey();
      slack.script(t, { status: 500 });
      // The retry waits 3-6 s: long enough that this replica is closed before it, however busy the machine.
      const before = await startTestApp(config(t, key, { alertRetryBaseSeconds: 6 }));
      try {
        await oneAnomaly(before, key);
        // Pending is also the state before the first attempt: wait for the failed attempt itself.
        const waiting = await waitFor(
          async () => {
            const [a] = await alertsOf(before, key);
            return a?.delivery.status === 'pending' && a.delivery.attempts >= 1 ? a : undefined;
          },
          10_000,
          'a failed attempt recorded',
        );
        expect(waiting.delivery).toMatchObject({
          attempts: 1,
          last_outcome: 'server_error',
          last_error: '500 internal_error',
        });
      } finally {
        await before.close();
      }
      expect(slack.messages(t)).toHaveLength(1);
      const after = await startTestApp(config(t, key, { alertRetryBaseSeconds: 6 }));
      try {
        const sent = await settled(after, key, 'sent', 2);
        expect(sent.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 0 });
        await after.app.get(AlertsService).tick();
        expect(slack.messages(t).map((m) => m.reply)).toEqual([500, 200]);
      } finally {
        await after.close();
      }
    });

    it('should finish the call in flight at shutdown, then retry it after the restart, counted as uncertain', async () => {
      const t = newTenantId('rt');
      const key = newApiKey();
      slack.script(t, { hang: true });
      const before = await startTestApp(config(t, key, { slackTimeoutMs: 1500, alertRetryBaseSeconds: 0.05 }));
      await oneAnomaly(before, key);
      await waitFor(() => slack.messages(t).length, 30_000, 'the call to hang');
      // Shutdown waits for the call (it times out), records it, and sends nothing more.
      await before.close();
      expect(slack.messages(t)).toHaveLength(1);
      const after = await startTestApp(config(t, key, { slackTimeoutMs: 1500, alertRetryBaseSeconds: 0.05 }));
      try {
        const sent = await settled(after, key, 'sent');
        expect(sent.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 1 });
        expect(slack.messages(t).map((m) => m.reply)).toEqual(['hang', 200]);
        expect(await prom(after)).toContain(`anomaly_detector_alerts_retried_after_timeout_total{tenant="${t}"} 1`);
      } finally {
        await after.close();
      }
    });

    it('should take over a message whose sender died mid-call once its lease runs out, and count the retry', async () => {
      const t = newTenantId('dead');
      const key = newApiKey();
      const sut = await startTestApp(config(t, key, { alertPollSeconds: 600 }));
      try {
        // Past the start-up pass, so that nothing but this test touches the outbox.
        await sut.app.get(AlertsService).tick();
        await storeQuietly(sut, t, ['api']);
        const repo = sut.app.get(AlertRepository);
        const settings = { cooldownMs: 600_000, renotifyMs: 0, minSeverity: 'info' as const };
        await sut.app.get(IncidentRepository).processPending(t, 100, (batch) => planIncidents(batch, settings));
        // A sender claims it and vanishes before calling Slack or recording anything.
        const [claimed] = await repo.claimDueAlerts([t], 10, 1);
        expect(claimed).toMatchObject({ status: 'sending', attempts: 1 });
        await sleep(20);
        await sut.app.get(AlertsService).tick();
        const [a] = await alertsOf(sut, key);
        expect(a.delivery).toMatchObject({ status: 'sent', attempts: 2, uncertain_attempts: 1, last_outcome: 'ok' });
        expect(slack.messages(t)).toHaveLength(1);
        expect(await prom(sut)).toContain(`anomaly_detector_alerts_retried_after_timeout_total{tenant="${t}"} 1`);
      } finally {
        await sut.close();
      }
    });

    it('should send each message once when two replicas race for the same backlog', async () => {
      const t = newTenantId('race');
      const key = newApiKey();
      const services = Array.from({ length: 45 }, (_, i) => `svc-${i}`);
      const [p, q] = [
        await startTestApp(config(t, key, { alertPollSeconds: 600 })),
        await startTestApp(config(t, key, { alertPollSeconds: 600 })),
      ];
      slack.delayMs = 30;
      try {
        await storeQuietly(p, t, services);
        // Both replicas turn the anomalies into alerts and deliver them, at the same time, twice over.
        await Promise.all([
          p.app.get(AlertsService).tick(),
          q.app.get(AlertsService).tick(),
          p.app.get(AlertsService).tick(),
          q.app.get(AlertsService).tick(),
        ]);
        await Promise.all([p.app.get(AlertsService).tick(), q.app.get(AlertsService).tick()]);
        const items = await alertsOf(p, key, '?limit=1000');
        expect(items).toHaveLength(45);
        expect(items.every((a) => a.delivery.status === 'sent' && a.delivery.attempts === 1)).toBe(true);
        const ids = slack.messages(t).map(alertIdIn);
        expect(ids).toHaveLength(45);
        expect(new Set(ids)).toEqual(new Set(items.map((a) => a.id)));
      } finally {
        slack.delayMs = 0;
        await Promise.all([p.close(), q.close()]);
      }
    });
  });
});
