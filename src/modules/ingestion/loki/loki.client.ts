import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { PushStream } from './loki-push.codec';

/** Outcome of a push: delivered, worth retrying (with Loki's Retry-After if any), or refused for good. */
export type PushOutcome =
  | { kind: 'ok' }
  | { kind: 'retry'; status: number | null; message: string; retryAfterMs?: number }
  | { kind: 'permanent'; status: number; message: string };

/** A failed query: bad LogQL (the message is Loki's) or Loki unreachable / failing. */
export class LokiQueryError extends Error {
  override name = 'LokiQueryError';
  constructor(
    message: string,
    readonly kind: 'bad-query' | 'unavailable',
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface QueriedEntry {
  labels: Record<string, string>;
  tsNs: bigint;
  line: string;
}

/** Parses Retry-After: seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * HTTP client of Loki: push (JSON) and `query_range` with paging. Adds `X-Scope-OrgID: <tenant>`
 * when LOKI_MULTI_TENANT, and basic or bearer credentials.
 */
@Injectable()
export class LokiClient {
  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  get pushConfigured(): boolean {
    return Boolean(this.config.lokiPushUrl);
  }

  /** Base URL of the query API: LOKI_QUERY_URL, else derived from LOKI_PUSH_URL. */
  get queryBase(): string | undefined {
    if (this.config.lokiQueryUrl) return this.config.lokiQueryUrl.replace(/\/+$/, '');
    if (!this.config.lokiPushUrl) return undefined;
    const u = new URL(this.config.lokiPushUrl);
    u.pathname = u.pathname.replace(/\/loki\/api\/v1\/push\/?$/, '') || '/';
    u.search = '';
    return u.toString().replace(/\/+$/, '');
  }

  private headers(tenantId: string): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.config.lokiMultiTenant) h['X-Scope-OrgID'] = tenantId;
    if (this.config.lokiBearerToken) h.Authorization = `Bearer ${this.config.lokiBearerToken}`;
    else if (this.config.lokiUsername) {
      h.Authorization = `Basic ${Buffer.from(`${this.config.lokiUsername}:${this.config.lokiPassword ?? ''}`).toString('base64')}`;
    }
    return h;
  }

  async push(tenantId: string, streams: PushStream[], timeoutMs = this.config.lokiTimeoutMs): Promise<PushOutcome> {
    const body = JSON.stringify({ streams: streams.map((s) => ({ stream: s.labels, values: s.entries.map((e) => [e.tsNs, e.line]) })) });
    let res: Response;
    try {
      res = await fetch(this.config.lokiPushUrl!, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...this.headers(tenantId) },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const err = e as Error;
      return { kind: 'retry', status: null, message: err.name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : err.message };
    }
    const text = (await res.text().catch(() => '')).slice(0, 500);
    if (res.ok) return { kind: 'ok' };
    if (res.status === 429 || res.status >= 500 || res.status === 408) {
      return { kind: 'retry', status: res.status, message: text || res.statusText, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) };
    }
    return { kind: 'permanent', status: res.status, message: text || res.statusText };
  }

  /**
   * All entries matching `query` in [start, end), oldest first, read page by page. A page ends at
   * `limit` entries; the next starts at the last timestamp seen (inclusive, since entries can share
   * a nanosecond) and drops the entries of that timestamp it already returned.
   */
  async queryRange(tenantId: string, query: string, startNs: bigint, endNs: bigint, firstPageSize = 1000): Promise<QueriedEntry[]> {
    let pageSize = firstPageSize;
    const base = this.queryBase;
    if (!base) throw new LokiQueryError('Loki is not configured (LOKI_QUERY_URL or LOKI_PUSH_URL)', 'unavailable');
    const out: QueriedEntry[] = [];
    let from = startNs;
    let seenAtFrom = new Set<string>();
    for (let page = 0; page < 100_000; page++) {
      const url = new URL(`${base}/loki/api/v1/query_range`);
      url.searchParams.set('query', query);
      url.searchParams.set('start', from.toString());
      url.searchParams.set('end', endNs.toString());
      url.searchParams.set('limit', String(pageSize));
      url.searchParams.set('direction', 'forward');
      let res: Response;
      try {
        res = await fetch(url, { headers: this.headers(tenantId), signal: AbortSignal.timeout(this.config.lokiTimeoutMs) });
      } catch (e) {
        throw new LokiQueryError(`Loki unreachable at ${base}: ${(e as Error).message}`, 'unavailable');
      }
      const text = await res.text();
      if (res.status === 400) throw new LokiQueryError(`Loki rejected the query ${query}: ${text.trim()}`, 'bad-query', 400);
      if (!res.ok) throw new LokiQueryError(`Loki answered ${res.status}: ${text.slice(0, 300)}`, 'unavailable', res.status);
      let body: { data?: { result?: { stream: Record<string, string>; values: [string, string][] }[] } };
      try {
        body = JSON.parse(text);
      } catch {
        throw new LokiQueryError('Loki answered with a body that is not JSON', 'unavailable', res.status);
      }
      const entries: QueriedEntry[] = [];
      for (const r of body.data?.result ?? []) {
        for (const [ts, line] of r.values) entries.push({ labels: r.stream, tsNs: BigInt(ts), line });
      }
      // Streams come back separately; one forward order across them.
      entries.sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
      const key = (e: QueriedEntry) => `${JSON.stringify(e.labels)}\u0000${e.line}`;
      const fresh = entries.filter((e) => !(e.tsNs === from && seenAtFrom.has(key(e))));
      out.push(...fresh);
      if (entries.length < pageSize) return out;
      const last = entries[entries.length - 1].tsNs;
      if (last === from && !fresh.length) {
        // More entries share this nanosecond than a page holds: the only way past is a bigger page.
        if (pageSize >= 5000) throw new LokiQueryError(`more than ${pageSize} entries share timestamp ${from}`, 'unavailable');
        pageSize = Math.min(5000, pageSize * 2);
        continue;
      }
      if (last !== from) seenAtFrom = new Set();
      for (const e of entries) if (e.tsNs === last) seenAtFrom.add(key(e));
      from = last;
    }
    throw new LokiQueryError('too many pages', 'unavailable');
  }
}
