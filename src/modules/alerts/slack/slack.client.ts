import { Inject, Injectable } from '@nestjs/common';
import axios, { AxiosError } from 'axios';
import { AppConfig } from '../../../config/app-config';
import { SlackMessage } from './slack-message';

/** How one webhook call ended. */
export type SlackResult =
  | { kind: 'ok' }
  /** 429: Slack asks us to wait this long. */
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** Another 4xx (invalid_payload, no_service, channel_is_archived…): retrying cannot help. */
  | { kind: 'rejected'; status: number; body: string }
  | { kind: 'server_error'; status: number; body: string }
  /** No complete answer (timed out, or the connection dropped after the request went out): Slack may have posted it. */
  | { kind: 'timeout'; error: string }
  /** Never reached Slack (refused, unresolvable): certainly not posted. */
  | { kind: 'network'; error: string };

const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION_VALUE',
]);
/** Longest Retry-After we honour as given; beyond it the normal backoff applies. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110). Null when absent or
 * unreadable.
 */
export function parseRetryAfter(header: unknown, now = Date.now()): number | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const v = header.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(v) * 1000));
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

/** Posts messages to Slack incoming webhooks (https://api.slack.com/messaging/webhooks). */
@Injectable()
export class SlackClient {
  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  /** Posts to the webhook `url`; `timeoutMs` defaults to SLACK_TIMEOUT_MS. */
  async post(url: string, message: SlackMessage, timeoutMs = this.config.slackTimeoutMs): Promise<SlackResult> {
    try {
      const res = await axios.post<string>(url, message, {
        timeout: timeoutMs,
        headers: { 'Content-Type': 'application/json' },
        responseType: 'text',
        transformResponse: (data: unknown) => data,
        validateStatus: () => true,
        maxRedirects: 0,
        // A webhook URL is a secret: never let a proxy variable route it elsewhere.
        proxy: false,
      });
      const body = typeof res.data === 'string' ? res.data.slice(0, 200) : '';
      if (res.status >= 200 && res.status < 300) return { kind: 'ok' };
      if (res.status === 429)
        return { kind: 'rate_limited', retryAfterMs: parseRetryAfter(res.headers['retry-after']) };
      if (res.status >= 500 || res.status === 408) return { kind: 'server_error', status: res.status, body };
      return { kind: 'rejected', status: res.status, body };
    } catch (e) {
      const err = e as AxiosError;
      const code = err.code ?? '';
      if (NOT_SENT.has(code)) return { kind: 'network', error: `${code}: ${err.message}` };
      // ECONNABORTED/ETIMEDOUT (our timeout), ECONNRESET, socket hang up: the request may have been read.
      return { kind: 'timeout', error: code ? `${code}: ${err.message}` : err.message };
    }
  }
}
