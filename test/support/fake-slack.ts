import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo, Socket } from 'net';

/** How the fake answers one webhook call, as Slack's incoming webhooks do. */
export type SlackReply =
  | { status: 200 }
  | { status: 429; retryAfter: number }
  | { status: 400 | 403 | 404 | 410 | 500 | 503; body?: string }
  /** Reads the request and never answers (the client times out). */
  | { hang: true };

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
  };
  at: number;
  /** What the fake answered (or 'hang'). */
  reply: number | 'hang';
}

/**
 * A small real HTTP server imitating Slack's incoming webhooks, for tests. Replies are scripted per
 * path (a queue; then the default, 200 `ok`). Every request it read is recorded, answered or not.
 */
export class FakeSlack {
  readonly received: ReceivedMessage[] = [];
  private readonly scripts = new Map<string, SlackReply[]>();
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
    const reply = this.scripts.get(path)?.shift() ?? { status: 200 };
    let body: ReceivedMessage['body'];
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
      return;
    }
    this.received.push({ path, body, at: Date.now(), reply: 'hang' in reply ? 'hang' : reply.status });
    if ('hang' in reply) return;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const headers: Record<string, string> = { 'Content-Type': 'text/html' };
    if (reply.status === 429) headers['Retry-After'] = String(reply.retryAfter);
    res
      .writeHead(reply.status, headers)
      .end(('body' in reply && reply.body) || (reply.status === 429 ? 'rate_limited' : BODIES[reply.status]));
  }
}
