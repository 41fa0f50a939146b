import { AppConfig } from '../../config/app-config';
import { backgroundStopMs, STOP_MARGIN_MS } from './graceful-shutdown';

describe('backgroundStopMs', () => {
  const config = (over: Partial<AppConfig>) => Object.assign(new AppConfig(), over);

  it('should keep only the margin when neither Slack nor Loki is configured', () => {
    expect(backgroundStopMs(config({}))).toBe(STOP_MARGIN_MS);
  });

  it('should keep the longest call of a configured transport: a bot look-up and post, a webhook resend, a Loki request', () => {
    expect(backgroundStopMs(config({ lokiPushUrl: 'http://loki:3100/loki/api/v1/push', lokiTimeoutMs: 10_000 }))).toBe(10_000 + STOP_MARGIN_MS);
    expect(backgroundStopMs(config({ slackWebhookUrl: 'https://hooks.slack.com/services/x', slackTimeoutMs: 10_000, slackRetryTimeoutMs: 20_000 }))).toBe(
      20_000 + STOP_MARGIN_MS,
    );
    expect(backgroundStopMs(config({ tenantSlackBots: { a: { channel: 'C1', token: 'xoxb-1' } }, slackTimeoutMs: 15_000, slackRetryTimeoutMs: 20_000 }))).toBe(
      30_000 + STOP_MARGIN_MS,
    );
  });
});
