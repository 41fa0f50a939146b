import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo, Socket } from 'net';

/** How the fake answers one webhook call, as Slack's incoming webhooks do. */
export type SlackReply =
  | { status: 200 }
  | { status: 429; retryAfter: number }
  | { status: 400 | 403 | 404 | 410 | 500 | 503; body?: string }
  /** Reads the request and never answers (the client times out). */
  | { hang: true }
  /** Takes the message (posted) and answers 200 only after this long, as a slow Slack does. */
  | { hangMs: number }
  /** Web API only: answers 200 `{ ok: false, error }` (channel_not_found, invalid_auth…). */
  | { error: string };

/** A message in a channel of the fake's Web API, as conversations.history returns it. */
export interface ChannelMessage {
  ts: string;
  text: string;
  blocks: unknown;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  token: string;
}

/** Slack's own reply bodies for these statuses. */
const BODIES: Record<number, string> = {
  200: 'ok',
  400: 'invalid_payload',
  403: 'invalid_token',
  404: 'no_service',
  410: 'channel_is_archived',
  500: 'internal_error',
  503: 'service_unavailable',
};

export interface ReceivedMessage {
  /** The webhook path, e.g. /services/T0/B0/tenant-a. */
  path: string;
  body: {
    text: string;
    blocks: {
      type: string;
      text?: { text: string };
      fields?: { text: string }[];
      elements?: { text?: string; url?: string }[];
    }[];
    /** Web API calls: the channel, and the message metadata of chat.postMessage. */
    channel?: string;
    metadata?: unknown;
  };
  at: number;
  /** What the fake answered (or 'hang'). */
  reply: number | 'hang';
}

type ApiArgs = Record<string, unknown>;

/**
 * A small real HTTP server imitating Slack for tests: incoming webhooks (`/services/…`) and the
 * two Web API methods the bot transport uses, `chat.postMessage` (message metadata kept) and
 * `conversations.history` (`include_all_metadata`, newest first, `oldest`, `limit`, cursor pages),
 * under `/api/`. Replies are scripted per webhook name or per channel (a queue; then success).
 * A message is posted as soon as it is read, whatever the reply: a hung or slow call still shows
 * in the channel, as with the real Slack. Every request it read is recorded, answered or not.
 */
export class FakeSlack {
  readonly received: ReceivedMessage[] = [];
  private readonly scripts = new Map<string, SlackReply[]>();
  /** Channel → messages, oldest first. */
  readonly channels = new Map<string, ChannelMessage[]>();
  /** Bot tokens the Web API accepts (any when empty). */
  readonly tokens = new Set<string>();
  private tsSeq = 0;
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  private port = 0;
  /** Delay before answering, to widen race windows. */
  delayMs = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** A webhook URL on this server. */
  url(name = 'default'): string {
    return `http://127.0.0.1:${this.port}/services/T000/B000/${name}`;
  }

  /** The next calls to the webhook `name` get these replies, in order. */
  script(name: string, ...replies: SlackReply[]): void {
    const path = new URL(this.url(name)).pathname;
    this.scripts.set(path, [...(this.scripts.get(path) ?? []), ...replies]);
  }

  /** Base URL of the fake's Web API (SLACK_API_URL). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  /** The next Web API calls for `channel` (`method` chat.postMessage or conversations.history) get these replies. */
  scriptApi(method: 'chat.postMessage' | 'conversations.history', channel: string, ...replies: SlackReply[]): void {
    const key = `${method} ${channel}`;
    this.scripts.set(key, [...(this.scripts.get(key) ?? []), ...replies]);
  }

  /** Messages in a channel (posted through the Web API). */
  posted(channel: string): ChannelMessage[] {
    return this.channels.get(channel) ?? [];
  }

  /** Messages received on one webhook (all of them without a name). */
  messages(name?: string): ReceivedMessage[] {
    const path = name === undefined ? undefined : new URL(this.url(name)).pathname;
    return this.received.filter((m) => path === undefined || m.path === path);
  }

  /** Messages whose text or blocks mention `needle` (e.g. a tenant id). */
  mentioning(needle: string): ReceivedMessage[] {
    return this.received.filter((m) => JSON.stringify(m.body).includes(needle));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = req.url ?? '/';
    if (path.startsWith('/api/')) return this.api(req, res, path.slice(5).split('?')[0], Buffer.concat(chunks).toString('utf8'));
    const reply = this.scripts.get(path)?.shift() ?? { status: 200 };
    let body: ReceivedMessage['body'];
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
      return;
    }
    this.received.push({ path, body, at: Date.now(), reply: 'hang' in reply ? 'hang' : 'status' in reply ? reply.status : 200 });
    if ('hang' in reply) return;
    if ('hangMs' in reply || 'error' in reply) {
      if ('hangMs' in reply) await new Promise((r) => setTimeout(r, reply.hangMs));
      if (!res.destroyed) res.writeHead(200, { 'Content-Type': 'text/html' }).end('ok');
      return;
    }
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const headers: Record<string, string> = { 'Content-Type': 'text/html' };
    if (reply.status === 429) headers['Retry-After'] = String(reply.retryAfter);
    res
      .writeHead(reply.status, headers)
      .end(('body' in reply && reply.body) || (reply.status === 429 ? 'rate_limited' : BODIES[reply.status]));
  }

  /** The Web API: form-encoded (as @slack/web-api sends) or JSON arguments; always HTTP 200 with `ok` unless scripted. */
  private async api(req: IncomingMessage, res: ServerResponse, method: string, raw: string): Promise<void> {
    const args: ApiArgs = (req.headers['content-type'] ?? '').includes('application/json')
      ? (JSON.parse(raw || '{}') as ApiArgs)
      : Object.fromEntries(new URLSearchParams(raw));
    const json = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as unknown) : v);
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '') || String(args.token ?? '');
    const answer = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
      if (!res.destroyed) res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    const channel = String(args.channel ?? '');
    const reply = this.scripts.get(`${method} ${channel}`)?.shift() ?? { status: 200 };
    const body = method === 'chat.postMessage' ? { text: String(args.text ?? ''), blocks: json(args.blocks) as ReceivedMessage['body']['blocks'], channel, metadata: json(args.metadata) } : { text: '', blocks: [], channel, method };
    this.received.push({ path: `/api/${method}`, body, at: Date.now(), reply: 'hang' in reply ? 'hang' : 'status' in reply ? reply.status : 200 });
    if (this.tokens.size && !this.tokens.has(token)) return answer(200, { ok: false, error: 'invalid_auth' });
    if ('error' in reply) return answer(200, { ok: false, error: reply.error });
    if ('status' in reply && reply.status === 429) return answer(429, { ok: false, error: 'ratelimited' }, { 'Retry-After': String(reply.retryAfter) });
    if ('status' in reply && reply.status !== 200) return answer(reply.status, { ok: false, error: 'internal_error' });
    let result: Record<string, unknown>;
    if (method === 'chat.postMessage') {
      if (!channel) return answer(200, { ok: false, error: 'channel_not_found' });
      const ts = `${Math.floor(Date.now() / 1000)}.${String(++this.tsSeq).padStart(6, '0')}`;
      const list = this.channels.get(channel) ?? [];
      list.push({ ts, text: body.text, blocks: body.blocks, metadata: body.metadata as ChannelMessage['metadata'], token });
      this.channels.set(channel, list);
      result = { ok: true, channel, ts };
    } else if (method === 'conversations.history') {
      const oldest = Number(args.oldest ?? 0);
      const limit = Number(args.limit ?? 100);
      const start = Number(args.cursor ?? 0);
      const all = [...(this.channels.get(channel) ?? [])].reverse().filter((m) => Number(m.ts) >= oldest);
      const page = all.slice(start, start + limit);
      const withMeta = String(args.include_all_metadata) === 'true';
      const more = start + limit < all.length;
      result = {
        ok: true,
        messages: page.map((m) => ({ type: 'message', ts: m.ts, text: m.text, ...(withMeta && m.metadata ? { metadata: m.metadata } : {}) })),
        has_more: more,
        response_metadata: { next_cursor: more ? String(start + limit) : '' },
      };
    } else {
      return answer(200, { ok: false, error: 'unknown_method' });
    }
    if ('hang' in reply) return;
    if ('hangMs' in reply) await new Promise((r) => setTimeout(r, reply.hangMs));
    answer(200, result);
  }
}
