import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { AlertRepository, ClaimedAlert, DeliveryOutcome } from '../store/alert.repository';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import {
  ALERT_DELIVERY_ATTEMPTS,
  ALERTS_FAILED,
  ALERTS_RETRIED_AFTER_TIMEOUT,
  ALERTS_SENT,
  ALERTS_SKIPPED,
} from './alerts.metrics';
import { SlackBotClient } from './slack/slack-bot.client';
import { SlackClient, SlackResult } from './slack/slack.client';
import { buildAlertMessage, SlackMessage } from './slack/slack-message';

/** Messages claimed (and sent concurrently) per round. */
const BATCH = 20;
/** Normal events a recovery message counts up to ("100000+"). */
const NORMAL_EVENTS_CAP = 100_000;
/** Longest wait between two attempts. */
const MAX_BACKOFF_MS = 15 * 60_000;

/**
 * Exponential backoff with jitter: attempt n waits between half and all of base·2^(n-1), capped,
 * so replicas retrying together spread out.
 */
export function backoffMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Where a tenant's messages go. */
type Route =
  | { transport: 'bot'; token: string; channel: string; target: 'tenant' | 'default' }
  | { transport: 'webhook'; url: string; target: 'tenant' | 'default' };

export interface SendRound {
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
  skipped: number;
  /** The soonest retry this round scheduled, in ms. */
  nextRetryMs: number | null;
}

/**
 * Delivers the alert outbox to Slack. Rows are claimed in the database (FOR UPDATE SKIP LOCKED)
 * and marked `sending` with a lease before the call, so neither another replica nor a restart
 * sends them again; the only repeat is after an attempt whose outcome is unknown (a timeout, or a
 * sender that died mid-call), which is counted. The webhook is chosen at send time, so a fixed
 * configuration applies to the backlog.
 */
@Injectable()
export class AlertOutboxSender {
  private readonly logger = new Logger(AlertOutboxSender.name);
  private draining?: Promise<void>;
  private again = false;
  private stopped = false;
  private wakeTimer?: NodeJS.Timeout;
  private wakeAt = Infinity;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly alerts: AlertRepository,
    private readonly slack: SlackClient,
    private readonly bot: SlackBotClient,
    private readonly tenants: TenantRegistry,
    @InjectMetric(ALERTS_SENT) private readonly sentCounter: Counter<string>,
    @InjectMetric(ALERTS_FAILED) private readonly failedCounter: Counter<string>,
    @InjectMetric(ALERTS_SKIPPED) private readonly skippedCounter: Counter<string>,
    @InjectMetric(ALERTS_RETRIED_AFTER_TIMEOUT) private readonly uncertainCounter: Counter<string>,
    @InjectMetric(ALERT_DELIVERY_ATTEMPTS) private readonly attemptCounter: Counter<string>,
  ) {}

  /** Lease on a claimed message: the call's timeout with a wide margin, so only a dead sender loses it. */
  get leaseMs(): number {
    return this.config.slackTimeoutMs * 2 + 30_000;
  }

  /** Sends everything due, round after round, until nothing is; concurrent calls share one drain. */
  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      try {
        do {
          this.again = false;
          let round: SendRound;
          do {
            round = await this.runOnce();
            if (round.nextRetryMs !== null) this.wakeIn(round.nextRetryMs);
          } while (round.claimed === BATCH && !this.stopped);
        } while (this.again && !this.stopped);
      } catch (e) {
        this.logger.error(`alert delivery round failed: ${(e as Error).message}`);
      } finally {
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  /** Stops claiming and waits for the calls in flight (bounded by SLACK_TIMEOUT_MS). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.wakeTimer);
    await this.draining;
  }

  /** One round: claims up to a batch of due messages and delivers them concurrently. */
  async runOnce(): Promise<SendRound> {
    const round: SendRound = { claimed: 0, sent: 0, retrying: 0, failed: 0, skipped: 0, nextRetryMs: null };
    if (this.stopped) return round;
    const claimed = await this.alerts.claimDueAlerts(this.tenants.list(), BATCH, this.leaseMs);
    round.claimed = claimed.length;
    await Promise.all(
      claimed.map(async (a) => {
        try {
          const r = await this.deliver(a);
          round[r.status === 'pending' ? 'retrying' : r.status]++;
          if (r.retryInMs !== undefined) round.nextRetryMs = Math.min(round.nextRetryMs ?? Infinity, r.retryInMs);
        } catch (e) {
          // The lease runs out and another round retries it.
          this.logger.error(
            `alert ${a.id} of tenant ${a.tenantId}: delivery bookkeeping failed: ${(e as Error).message}`,
          );
        }
      }),
    );
    return round;
  }

  /**
   * Where the tenant's messages go, by precedence: its own bot (TENANT_SLACK_BOTS), its own
   * webhook (TENANT_SLACK_WEBHOOKS), the default bot (SLACK_BOT_TOKEN + SLACK_CHANNEL), the
   * default webhook (SLACK_WEBHOOK_URL). Chosen at send time, so a fixed configuration applies to
   * the backlog.
   */
  private routeFor(tenantId: string): Route | null {
    const bot = this.config.tenantSlackBots[tenantId];
    const token = bot?.token ?? this.config.slackBotToken;
    if (bot && token) return { transport: 'bot', token, channel: bot.channel, target: 'tenant' };
    const own = this.config.tenantSlackWebhooks[tenantId];
    if (own) return { transport: 'webhook', url: own, target: 'tenant' };
    if (this.config.slackBotToken && this.config.slackChannel)
      return { transport: 'bot', token: this.config.slackBotToken, channel: this.config.slackChannel, target: 'default' };
    if (this.config.slackWebhookUrl) return { transport: 'webhook', url: this.config.slackWebhookUrl, target: 'default' };
    return null;
  }

  /**
   * One delivery attempt. With a bot, a message that may already be in Slack (an earlier attempt
   * got no answer, or its sender died) is looked up by its alert id in the channel's history first
   * and only posted if absent: exactly once. A webhook cannot be asked, so after an attempt with no
   * answer it is sent once more with SLACK_RETRY_TIMEOUT_MS, and a second attempt with no answer
   * fails the message: at most one duplicate, counted in `uncertain_attempts`.
   */
  private async deliver(
    a: ClaimedAlert,
  ): Promise<{ status: 'sent' | 'pending' | 'failed' | 'skipped'; retryInMs?: number }> {
    const tenant = a.tenantId;
    const route = this.routeFor(tenant);
    if (!route) {
      await this.alerts.finishAttempt(tenant, a.id, a.attempts, {
        status: 'skipped',
        outcome: 'not_configured',
        error: 'no Slack route for this tenant (TENANT_SLACK_BOTS, TENANT_SLACK_WEBHOOKS, SLACK_BOT_TOKEN, SLACK_WEBHOOK_URL)',
      });
      this.skippedCounter.inc({ tenant, reason: 'not_configured' });
      return { status: 'skipped' };
    }
    // An earlier attempt may have reached Slack (no answer, or its sender vanished).
    const mayBeInSlack = a.uncertainAttempts > 0 || a.retryAfterUncertain;
    const normalSince =
      a.kind === 'recovery'
        ? // A detail of the message: without it the recovery still goes out.
          await this.alerts
            .normalEventsBetween(tenant, a.service, a.lastSeen, a.createdAt, NORMAL_EVENTS_CAP)
            .catch(() => undefined)
        : undefined;
    const message = this.message(a, normalSince);
    const slack =
      route.transport === 'bot' ? { transport: 'bot' as const, channel: route.channel } : { transport: 'webhook' as const };
    const done = (
      status: 'sent' | 'pending' | 'failed',
      outcome: DeliveryOutcome,
      error: string | null,
      retryInMs?: number,
      uncertain = false,
      ts?: string,
    ) =>
      this.alerts
        .finishAttempt(tenant, a.id, a.attempts, {
          status,
          outcome,
          error,
          retryInMs,
          target: route.target,
          payload: message,
          uncertain,
          slack: { ...slack, ts },
        })
        .then((applied) => {
          if (!applied)
            this.logger.warn(`alert ${a.id} of tenant ${tenant}: lease lost before the outcome was recorded`);
          return { status, retryInMs };
        });

    let result: SlackResult;
    let ts: string | undefined;
    if (route.transport === 'bot') {
      const found = mayBeInSlack ? await this.bot.find(route.token, route.channel, a.id, a.createdAt) : { kind: 'absent' as const };
      if (found.kind === 'found') {
        this.attemptCounter.inc({ tenant, outcome: 'found' });
        this.sentCounter.inc({ tenant, kind: a.kind });
        this.logger.log(`alert ${a.id} of tenant ${tenant}: already in the channel (ts ${found.ts}); not sent again`);
        return done('sent', 'ok', null, undefined, false, found.ts);
      }
      if (found.kind === 'absent') {
        const posted = await this.bot.post(route.token, route.channel, message, a.id, tenant);
        result = posted;
        ts = posted.ts;
      } else {
        // Cannot tell whether it is there: posting could double it, so only the lookup is retried.
        result =
          found.kind === 'rejected' || found.kind === 'rate_limited'
            ? found
            : { kind: 'server_error', status: 0, body: `history lookup: ${describe(found)}` };
      }
    } else {
      if (mayBeInSlack) {
        this.uncertainCounter.inc({ tenant });
        this.logger.warn(
          `alert ${a.id} of tenant ${tenant}: sending again after an attempt with no answer; Slack may show it twice`,
        );
      }
      result = await this.slack.post(route.url, message, mayBeInSlack ? this.config.slackRetryTimeoutMs : undefined);
    }
    this.attemptCounter.inc({ tenant, outcome: result.kind });

    if (result.kind === 'ok') {
      this.sentCounter.inc({ tenant, kind: a.kind });
      return done('sent', 'ok', null, undefined, false, ts);
    }
    if (result.kind === 'rejected') {
      this.failedCounter.inc({ tenant, kind: a.kind });
      this.logger.error(
        `alert ${a.id} of tenant ${tenant}: Slack rejected it (${result.status} ${result.body}); not retried`,
      );
      return done('failed', 'rejected', `${result.status} ${result.body}`.trim());
    }
    const outcome: DeliveryOutcome =
      result.kind === 'rate_limited'
        ? 'rate_limited'
        : result.kind === 'server_error'
          ? 'server_error'
          : result.kind === 'timeout'
            ? 'timeout'
            : 'network';
    const error = describe(result);
    const uncertain = result.kind === 'timeout';
    if (uncertain && route.transport === 'webhook' && a.uncertainAttempts + 1 >= 2) {
      this.failedCounter.inc({ tenant, kind: a.kind });
      this.logger.error(`alert ${a.id} of tenant ${tenant}: no answer from the webhook twice (${error}); not sent again`);
      return done('failed', outcome, `${error}; no answer twice, not sent again (Slack may show it up to twice)`, undefined, true);
    }
    if (a.attempts >= this.config.alertMaxAttempts) {
      this.failedCounter.inc({ tenant, kind: a.kind });
      this.logger.error(`alert ${a.id} of tenant ${tenant}: giving up after ${a.attempts} attempts (${error})`);
      return done('failed', outcome, `${error}; gave up after ${a.attempts} attempts`, undefined, uncertain);
    }
    const retryInMs =
      result.kind === 'rate_limited' && result.retryAfterMs !== null
        ? result.retryAfterMs
        : backoffMs(a.attempts, this.config.alertRetryBaseSeconds * 1000);
    this.logger.warn(
      `alert ${a.id} of tenant ${tenant}: attempt ${a.attempts} failed (${error}); retrying in ${retryInMs} ms`,
    );
    return done('pending', outcome, error, retryInMs, uncertain);
  }

  private message(a: ClaimedAlert, normalSince: number | undefined): SlackMessage {
    return buildAlertMessage({
      tenant: a.tenantId,
      alertId: a.id,
      service: a.service,
      kind: a.kind,
      severity: a.severity,
      anomalyCount: a.anomalyCount,
      firstSeen: a.firstSeen,
      lastSeen: a.lastSeen,
      incident: a.incident,
      worst: a.worst,
      linkTemplate: this.config.alertLinkTemplate,
      cooldownMs: this.config.alertCooldownMinutes * 60_000,
      normalSince,
    });
  }

  /** Wakes the sender for a retry due sooner than the next poll. */
  private wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.stopped || at >= this.wakeAt) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeAt = Infinity;
      void this.drain();
    }, ms + 5);
    this.wakeTimer.unref();
  }
}

function describe(r: SlackResult): string {
  switch (r.kind) {
    case 'rate_limited':
      return `429 rate limited${r.retryAfterMs !== null ? ` (Retry-After ${r.retryAfterMs / 1000}s)` : ''}`;
    case 'server_error':
    case 'rejected':
      return `${r.status} ${r.body}`.trim();
    case 'timeout':
      return `no answer: ${r.error}`;
    case 'network':
      return r.error;
    default:
      return r.kind;
  }
}
