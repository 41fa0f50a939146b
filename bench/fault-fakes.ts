/**
 * Small real HTTP servers (Node `http`) standing in for Slack and Loki in the fault benchmarks
 * (`bench/faults.bench.ts`). They count what reached them, per alert id and per Loki entry, so
 * duplicates can be told from retries that never arrived.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo, Socket } from 'net';
import { gunzipSync } from 'zlib';

/** Alert ids are UUIDs; every alert message names its own in a context block (`alert \`<id>\``). */
const ALERT_ID_IN_TEXT = /alert `([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`/;

/** One request the fake Slack read (posted or not, answered or not). */
export interface SlackRequest {
  /** `webhook`, `chat.postMessage`, `conversations.history` or another Web API method. */
  method: string;
  /** Webhook name (last path segment) or Web API channel. */
  target: string;
  /** The alert id the message carries (metadata, else its text); null for look-ups. */
  alertId: string | null;
  at: number;
  /** Received while Slack was hanging: answered only after `hangMs` (if the caller still waited). */
  hung: boolean;
}

/** A message in a channel, as `conversations.history` returns it. */
interface ChannelMessage {
  ts: string;
  text: string;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

/** A server on a free port of 127.0.0.1 whose `handle` answers every request; `stop` cuts open connections. */
abstract class FakeServer {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  protected port = 0;

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/**
 * A Slack that hangs: from the first request it reads, and for `windowMs`, every request (webhook
 * or Web API) is taken at once — a message is in the channel as soon as it is read, as with the
 * real Slack when its answer is slow — and answered only after `hangMs`; after the window it
 * answers at once. Incoming webhooks under `/services/…`; the Web API under `/api/`:
 * `chat.postMessage` (message metadata kept) and `conversations.history` (newest first, `oldest`
 * exclusive, `limit`, cursor pages, metadata only with `include_all_metadata`), form-encoded or
 * JSON arguments as Slack accepts them.
 */
export class HangingSlack extends FakeServer {
  readonly requests: SlackRequest[] = [];
  /** Channel → messages, oldest first. */
  readonly channels = new Map<string, ChannelMessage[]>();
  /** When the hang window began (the first request), or null. */
  windowStart: number | null = null;
  private seq = 0;

  constructor(
    readonly hangMs: number,
    readonly windowMs: number,
  ) {
    super();
  }

  /** An incoming-webhook URL named `name`. */
  webhookUrl(name: string): string {
    return `http://127.0.0.1:${this.port}/services/T000/B000/${name}`;
  }

  /** SLACK_API_URL of the fake Web API. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  /** End of the hang window (Infinity before it began). */
  get windowEnd(): number {
    return this.windowStart === null ? Infinity : this.windowStart + this.windowMs;
  }

  /** Messages that reached `target` (a webhook name or a channel), per alert id. */
  messagesPerAlert(target: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.requests) {
      if (r.target !== target || r.alertId === null || (r.method !== 'webhook' && r.method !== 'chat.postMessage')) continue;
      out.set(r.alertId, (out.get(r.alertId) ?? 0) + 1);
    }
    return out;
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const now = Date.now();
    if (this.windowStart === null) this.windowStart = now;
    const hung = now < this.windowEnd;
    const path = (req.url ?? '/').split('?')[0];
    let status = 200;
    let contentType = 'text/html';
    let answer: () => string;
    if (path.startsWith('/api/')) {
      const method = path.slice(5);
      const args: Record<string, unknown> = (req.headers['content-type'] ?? '').includes('application/json')
        ? (JSON.parse(raw || '{}') as Record<string, unknown>)
        : Object.fromEntries(new URLSearchParams(raw));
      const json = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as unknown) : v);
      const channel = String(args.channel ?? '');
      contentType = 'application/json';
      if (method === 'chat.postMessage') {
        const metadata = args.metadata === undefined ? undefined : (json(args.metadata) as ChannelMessage['metadata']);
        const text = String(args.text ?? '');
        const ts = `${Math.floor(now / 1000)}.${String(++this.seq).padStart(6, '0')}`;
        const list = this.channels.get(channel) ?? [];
        list.push({ ts, text, metadata });
        this.channels.set(channel, list);
        const alertId = (metadata?.event_payload?.alert_id as string | undefined) ?? ALERT_ID_IN_TEXT.exec(JSON.stringify(args))?.[1] ?? null;
        this.requests.push({ method, target: channel, alertId, at: now, hung });
        answer = () => JSON.stringify({ ok: true, channel, ts, message: { type: 'message', ts, text, metadata } });
      } else if (method === 'conversations.history') {
        this.requests.push({ method, target: channel, alertId: null, at: now, hung });
        // What the channel holds when the answer is written (as Slack would read it then).
        answer = () => {
          const oldest = Number(args.oldest ?? 0);
          const limit = Math.min(1000, Number(args.limit ?? 100));
          const start = Number(args.cursor ?? 0) || 0;
          const all = [...(this.channels.get(channel) ?? [])].reverse().filter((m) => Number(m.ts) > oldest);
          const page = all.slice(start, start + limit);
          const withMeta = String(args.include_all_metadata) === 'true';
          const more = start + limit < all.length;
          return JSON.stringify({
            ok: true,
            messages: page.map((m) => ({ type: 'message', ts: m.ts, text: m.text, ...(withMeta && m.metadata ? { metadata: m.metadata } : {}) })),
            has_more: more,
            response_metadata: { next_cursor: more ? String(start + limit) : '' },
          });
        };
      } else {
        this.requests.push({ method, target: channel, alertId: null, at: now, hung });
        answer = () => JSON.stringify({ ok: false, error: 'unknown_method' });
      }
    } else if (path.startsWith('/services/')) {
      const name = path.split('/').pop() ?? '';
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
        return;
      }
      this.requests.push({ method: 'webhook', target: name, alertId: ALERT_ID_IN_TEXT.exec(JSON.stringify(body))?.[1] ?? null, at: now, hung });
      answer = () => 'ok';
    } else {
      status = 404;
      answer = () => 'not found';
    }
    if (hung) await new Promise((r) => setTimeout(r, this.hangMs));
    if (!res.destroyed && !res.socket?.destroyed) res.writeHead(status, { 'Content-Type': contentType }).end(answer());
  }
}

/** A `query_range` call the fake Loki answered. */
export interface LokiQuery {
  orgId: string | undefined;
  query: string;
  at: number;
}

/**
 * A Loki that keeps every push: each entry (org, stream labels, timestamp, line) with the number of
 * times it was pushed (Loki itself would drop the exact repeats; here they are counted). Pushes can
 * be slowed (`pushDelayMs`) so a backlog builds and a push is in flight when the sender stops.
 * `query_range` answers an empty result and records the call (the scheduler's pulls).
 */
export class CountingLoki extends FakeServer {
  readonly counts = new Map<string, number>();
  readonly pushes: { entries: number; at: number; answeredAt: number }[] = [];
  readonly queries: LokiQuery[] = [];
  pushDelayMs = 0;

  /** LOKI_PUSH_URL. */
  get pushUrl(): string {
    return `http://127.0.0.1:${this.port}/loki/api/v1/push`;
  }

  /** Entries pushed more than once, and how many pushes of them were repeats. */
  duplicates(): { entries: number; repeats: number } {
    let entries = 0;
    let repeats = 0;
    for (const n of this.counts.values()) {
      if (n > 1) {
        entries++;
        repeats += n - 1;
      }
    }
    return { entries, repeats };
  }

  /** Ids of the `events` stream's entries received (each line is the event's JSON with its id). */
  eventIds(): Set<string> {
    const out = new Set<string>();
    for (const key of this.counts.keys()) {
      const [, labels, , line] = JSON.parse(key) as [string | null, Record<string, string>, string, string];
      if (labels.stream === 'events') out.add((JSON.parse(line) as { id: string }).id);
    }
    return out;
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://loki');
    const orgId = req.headers['x-scope-orgid'] as string | undefined;
    if (req.method === 'POST' && url.pathname === '/loki/api/v1/push') {
      const raw = await readBody(req);
      const at = Date.now();
      const parsed = JSON.parse(raw.toString('utf8')) as { streams: { stream: Record<string, string>; values: [string, string][] }[] };
      if (this.pushDelayMs) await new Promise((r) => setTimeout(r, this.pushDelayMs));
      // Loki stores what it read even when the pusher is gone by the time it answers.
      let n = 0;
      for (const s of parsed.streams) {
        for (const [ts, line] of s.values) {
          const key = JSON.stringify([orgId ?? null, s.stream, ts, line]);
          this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
          n++;
        }
      }
      this.pushes.push({ entries: n, at, answeredAt: Date.now() });
      if (!res.destroyed) res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/loki/api/v1/query_range') {
      this.queries.push({ orgId, query: url.searchParams.get('query') ?? '', at: Date.now() });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [] } }));
      return;
    }
    res.writeHead(404).end('404 page not found\n');
  }
}
