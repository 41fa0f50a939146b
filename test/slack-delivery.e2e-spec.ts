import request from 'supertest';
import { ALERT_EVENT_TYPE } from '../src/modules/alerts/slack/slack-bot.client';
import { alertsOf, oneAnomaly, settled } from './factories/alert-delivery';
import { FakeSlack } from './support/fake-slack';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const prom = async (app: TestApp) => (await request(app.http).get('/prom').expect(200)).text;

/**
 * A slow Slack (scaled down from "answers after 30 s for 2 minutes"): every call is taken at once
 * but answered after 1.5 s, while our timeout is 300 ms.
 */
const SLOW = { hangMs: 1500 };

describe('Slack delivery: bot token (chat.postMessage) and webhooks', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await new FakeSlack().start();
  });
  afterAll(() => slack.stop());

  describe('per-tenant routing', () => {
    const [botA, botB, hook, fallback] = [newTenantId('ba'), newTenantId('bb'), newTenantId('wh'), newTenantId('df')];
    const tenants = [botA, botB, hook, fallback];
    const keys = Object.fromEntries(tenants.map((t) => [t, newApiKey()]));
    let sut: TestApp;
    beforeAll(async () => {
      slack.tokens.add('xoxb-a').add('xoxb-default');
      sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: botA,
        tenants,
        tenantApiKeys: Object.fromEntries(tenants.map((t) => [t, [keys[t]]])),
        slackApiUrl: slack.apiUrl,
        slackBotToken: 'xoxb-default',
        slackChannel: `C-default-${fallback}`,
        tenantSlackBots: { [botA]: { token: 'xoxb-a', channel: `C-${botA}` }, [botB]: { channel: `C-${botB}` } },
        tenantSlackWebhooks: { [hook]: slack.url(hook) },
        alertPollSeconds: 0.2,
        alertRetryBaseSeconds: 0.05,
        slackTimeoutMs: 300,
        slackRetryTimeoutMs: 3000,
      });
    });
    afterAll(async () => {
      slack.tokens.clear();
      await sut.close();
    });

    it("should post each tenant's alert with its own bot token and channel, its webhook, or the default bot", async () => {
      for (const t of tenants) await oneAnomaly(sut, keys[t]);
      for (const t of tenants) await settled(sut, keys[t], 'sent');
      const [a] = slack.posted(`C-${botA}`);
      expect(a).toMatchObject({ token: 'xoxb-a', metadata: { event_type: ALERT_EVENT_TYPE, event_payload: { tenant: botA } } });
      const [alertA] = await alertsOf(sut, keys[botA]);
      expect(a.metadata?.event_payload.alert_id).toBe(alertA.id);
      expect(alertA.delivery).toMatchObject({ attempts: 1, target: 'tenant', uncertain_attempts: 0 });
      expect(slack.posted(`C-${botB}`).map((m) => m.token)).toEqual(['xoxb-default']);
      expect(slack.posted(`C-default-${fallback}`).map((m) => m.metadata?.event_payload.tenant)).toEqual([fallback]);
      expect((await alertsOf(sut, keys[fallback]))[0].delivery.target).toBe('default');
      expect(slack.messages(hook).map((m) => m.body.text)).toEqual([expect.stringContaining(`(tenant ${hook})`)]);
      // No tenant's alert in another tenant's channel.
      for (const ch of slack.channels.keys()) {
        const owner = tenants.find((t) => ch.endsWith(t))!;
        expect(slack.posted(ch).every((m) => m.metadata?.event_payload.tenant === owner)).toBe(true);
      }
    });
  });

  describe('Slack slower than SLACK_TIMEOUT_MS (acceptance)', () => {
    const base = {
      alertPollSeconds: 0.2,
      alertRetryBaseSeconds: 0.05,
      alertMaxAttempts: 8,
      slackTimeoutMs: 300,
      slackRetryTimeoutMs: 3000,
    };

    it('should post once with a bot token: after no answer, it finds the alert id in the channel history instead of posting again', async () => {
      const t = newTenantId('slow');
      const key = newApiKey();
      const channel = `C-${t}`;
      slack.scriptApi('chat.postMessage', channel, SLOW, SLOW, SLOW, SLOW);
      // The first look-up gets no answer either: nothing is posted until one does.
      slack.scriptApi('conversations.history', channel, { hang: true });
      const sut = await startTestApp({
        defaultTenant: t,
        tenants: [t],
        tenantApiKeys: { [t]: [key] },
        slackApiUrl: slack.apiUrl,
        tenantSlackBots: { [t]: { token: 'xoxb-slow', channel } },
        ...base,
      });
      try {
        await oneAnomaly(sut, key);
        const sent = await settled(sut, key, 'sent');
        expect(sent.delivery).toMatchObject({ last_outcome: 'ok', uncertain_attempts: 1 });
        expect(sent.delivery.attempts).toBeGreaterThanOrEqual(3);
        expect(slack.posted(channel)).toHaveLength(1);
        expect(slack.posted(channel)[0].metadata?.event_payload.alert_id).toBe(sent.id);
        expect(slack.received.filter((m) => m.path === '/api/chat.postMessage' && m.body.channel === channel)).toHaveLength(1);
        const rows = await sut.database.dataSource.query(`SELECT transport, slack_channel, slack_ts FROM alerts WHERE tenant_id = $1`, [t]);
        expect(rows).toEqual([{ transport: 'bot', slack_channel: channel, slack_ts: slack.posted(channel)[0].ts }]);
        expect(await prom(sut)).toContain(`alert_delivery_attempts_total{tenant="${t}",outcome="found"} 1`);
      } finally {
        await sut.close();
      }
    });

    it('should send a webhook message at most twice: one retry with the longer timeout, counted', async () => {
      const t = newTenantId('slowhook');
      const key = newApiKey();
      slack.script(t, SLOW, SLOW, SLOW);
      const sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, tenantSlackWebhooks: { [t]: slack.url(t) }, ...base });
      try {
        await oneAnomaly(sut, key);
        const sent = await settled(sut, key, 'sent');
        expect(sent.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 1, last_outcome: 'ok' });
        // Slack took both: one duplicate, counted.
        expect(slack.messages(t)).toHaveLength(2);
        expect(await prom(sut)).toContain(`alerts_retried_after_timeout_total{tenant="${t}"} 1`);
      } finally {
        await sut.close();
      }
    });

    it('should give a webhook message up after a second attempt with no answer, never a third send', async () => {
      const t = newTenantId('deadhook');
      const key = newApiKey();
      slack.script(t, { hangMs: 5000 }, { hangMs: 5000 }, { hangMs: 5000 });
      const sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, tenantSlackWebhooks: { [t]: slack.url(t) }, ...base });
      try {
        await oneAnomaly(sut, key);
        const failed = await settled(sut, key, 'failed');
        expect(failed.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 2, last_outcome: 'timeout' });
        expect(failed.delivery.last_error).toMatch(/no answer twice/);
        expect(slack.messages(t)).toHaveLength(2);
      } finally {
        await sut.close();
      }
    });

    it('should fail a bot message at once when Slack rejects it (channel_not_found), and retry a rate limit', async () => {
      const [gone, limited] = [newTenantId('gone'), newTenantId('lim')];
      const [kg, kl] = [newApiKey(), newApiKey()];
      slack.scriptApi('chat.postMessage', `C-${gone}`, { error: 'channel_not_found' });
      slack.scriptApi('chat.postMessage', `C-${limited}`, { status: 429, retryAfter: 1 });
      const sut = await startTestApp({
        multiTenantEnabled: true,
        defaultTenant: gone,
        tenants: [gone, limited],
        tenantApiKeys: { [gone]: [kg], [limited]: [kl] },
        slackApiUrl: slack.apiUrl,
        slackBotToken: 'xoxb-any',
        tenantSlackBots: { [gone]: { channel: `C-${gone}` }, [limited]: { channel: `C-${limited}` } },
        ...base,
      });
      try {
        await oneAnomaly(sut, kg);
        await oneAnomaly(sut, kl);
        const failed = await settled(sut, kg, 'failed');
        expect(failed.delivery).toMatchObject({ attempts: 1, last_outcome: 'rejected', last_error: '200 channel_not_found' });
        const sent = await settled(sut, kl, 'sent');
        expect(sent.delivery).toMatchObject({ attempts: 2, uncertain_attempts: 0 });
        expect(slack.posted(`C-${limited}`)).toHaveLength(1);
      } finally {
        await sut.close();
      }
    });
  });
});
