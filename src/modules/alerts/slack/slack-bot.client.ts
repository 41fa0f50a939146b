import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, LogLevel, WebAPICallError, WebClient } from '@slack/web-api';
import { AppConfig } from '../../../config/app-config';
import { SlackMessage } from './slack-message';
import { SlackResult } from './slack.client';

/** Slack message metadata type carried by every alert message (https://api.slack.com/metadata). */
export const ALERT_EVENT_TYPE = 'anomaly_detector_alert';
/** Messages read back per history page, and pages at most, when looking for an alert. */
const HISTORY_PAGE = 200;
const HISTORY_PAGES = 5;

/** Web API errors that mean the call reached Slack and retrying cannot help. */
const REJECTED = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'invalid_blocks',
  'invalid_metadata_format',
  'invalid_metadata_schema',
  'msg_too_long',
  'no_text',
  'restricted_action',
  'invalid_arguments',
]);

/** Errors of the request itself that prove it never reached Slack. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export type PostResult = SlackResult & { ts?: string };
/** Whether an alert's message is already in the channel (or why that could not be told). */
export type LookupResult = { kind: 'found'; ts: string } | { kind: 'absent' } | Exclude<SlackResult, { kind: 'ok' }>;

/**
 * Posts alert messages with a Slack app's bot token through `chat.postMessage`, each carrying the
 * alert id in its message metadata (`event_type` {@link ALERT_EVENT_TYPE}, `event_payload.alert_id`),
 * and finds them again with `conversations.history` (`include_all_metadata`), so a call whose answer
 * never came can be checked before sending again: delivery exactly once, where webhooks cannot.
 * Uses the official client (`@slack/web-api`) with its own retries off (the outbox retries) and
 * SLACK_TIMEOUT_MS per call.
 */
@Injectable()
export class SlackBotClient {
  private readonly clients = new Map<string, WebClient>();

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  /** Posts `message` to `channel`, tagged with the alert id. */
  async post(token: string, channel: string, message: SlackMessage, alertId: string, tenant: string): Promise<PostResult> {
    try {
      const res = await this.client(token).chat.postMessage({
        channel,
        text: message.text,
        blocks: message.blocks as never,
        metadata: { event_type: ALERT_EVENT_TYPE, event_payload: { alert_id: alertId, tenant } },
        unfurl_links: false,
      });
      return { kind: 'ok', ts: res.ts };
    } catch (e) {
      return classify(e);
    }
  }

  /**
   * Looks for the alert's message among the channel's messages posted since `since` (newest
   * first, up to 1,000). `absent` only when the whole window was read.
   */
  async find(token: string, channel: string, alertId: string, since: Date): Promise<LookupResult> {
    const client = this.client(token);
    let cursor: string | undefined;
    try {
      for (let page = 0; page < HISTORY_PAGES; page++) {
        const res = await client.conversations.history({
          channel,
          oldest: (Math.floor(since.getTime() / 1000) - 60).toString(),
          limit: HISTORY_PAGE,
          include_all_metadata: true,
          cursor,
        });
        for (const m of res.messages ?? []) {
          const meta = m.metadata as { event_type?: string; event_payload?: { alert_id?: unknown } } | undefined;
          if (meta?.event_type === ALERT_EVENT_TYPE && meta.event_payload?.alert_id === alertId && m.ts) return { kind: 'found', ts: m.ts };
        }
        cursor = res.response_metadata?.next_cursor || undefined;
        if (!res.has_more || !cursor) return { kind: 'absent' };
      }
      // Beyond what we read: unknown, so not absent.
      return { kind: 'server_error', status: 200, body: `more than ${HISTORY_PAGE * HISTORY_PAGES} messages since the first attempt` };
    } catch (e) {
      const r = classify(e);
      return r.kind === 'ok' ? { kind: 'absent' } : r;
    }
  }

  private client(token: string): WebClient {
    let c = this.clients.get(token);
    if (!c) {
      c = new WebClient(token, {
        slackApiUrl: this.config.slackApiUrl,
        timeout: this.config.slackTimeoutMs,
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        logLevel: LogLevel.ERROR,
      });
      this.clients.set(token, c);
    }
    return c;
  }
}

/** Maps a Web API failure to how the attempt ended. */
function classify(e: unknown): PostResult {
  const err = e as WebAPICallError;
  switch (err.code) {
    case ErrorCode.RateLimitedError:
      return { kind: 'rate_limited', retryAfterMs: err.retryAfter * 1000 };
    case ErrorCode.PlatformError: {
      const code = String(err.data.error ?? 'unknown_error');
      if (code === 'ratelimited') return { kind: 'rate_limited', retryAfterMs: null };
      return REJECTED.has(code) ? { kind: 'rejected', status: 200, body: code } : { kind: 'server_error', status: 200, body: code };
    }
    case ErrorCode.HTTPError:
      return err.statusCode >= 500 || err.statusCode === 408
        ? { kind: 'server_error', status: err.statusCode, body: String(err.body ?? '').slice(0, 200) }
        : { kind: 'rejected', status: err.statusCode, body: String(err.body ?? '').slice(0, 200) };
    case ErrorCode.RequestError: {
      const original = err.original as Error & { cause?: { code?: string } };
      const code = original.cause?.code ?? '';
      if (NOT_SENT.has(code)) return { kind: 'network', error: `${code}: ${original.message}` };
      // A timeout (TimeoutError), or the connection dropped after the request went out: Slack may have it.
      return { kind: 'timeout', error: `${original.name === 'TimeoutError' ? 'timeout' : code || original.name}: ${original.message}` };
    }
    default:
      return { kind: 'timeout', error: (e as Error).message };
  }
}
