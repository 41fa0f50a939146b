import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { gunzipSync } from 'zlib';

export interface StoredEntry {
  orgId: string | undefined;
  labels: Record<string, string>;
  tsNs: bigint;
  line: string;
}

type Scripted = { status: number; body?: string; headers?: Record<string, string> } | 'hang' | { delayMs: number };

/**
 * A small Loki in a test: JSON push (gzip too) and query_range, tenant isolation through
 * X-Scope-OrgID, exact-duplicate dropping like Loki, and scripted failures (500, 429 with
 * Retry-After, 400 too old, hanging replies) for the next pushes.
 */
export class FakeLoki {
  private server?: Server;
  readonly entries: StoredEntry[] = [];
  readonly pushes: { orgId?: string; auth?: string; streams: number; entries: number; at: number }[] = [];
  private readonly script: Scripted[] = [];
  private readonly seen = new Set<string>();
  requireOrgId = false;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next pushes get these answers, in order; then pushes succeed again. */
  failNext(...answers: Scripted[]): void {
    this.script.push(...answers);
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', () => r()));
    this.port = (this.server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const orgId = req.headers['x-scope-orgid'] as string | undefined;
    if (this.requireOrgId && !orgId) {
      res.writeHead(401).end('no org id\n');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/loki/api/v1/push') {
      const raw = await this.body(req);
      const next = this.script.shift();
      if (next === 'hang') return; // never answers: the client's timeout fires
      if (next && 'delayMs' in next) await new Promise((r) => setTimeout(r, next.delayMs));
      else if (next) {
        res.writeHead(next.status, next.headers ?? {}).end(next.body ?? '');
        return;
      }
      let parsed: { streams: { stream: Record<string, string>; values: [string, string][] }[] };
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        res.writeHead(400).end('loghttp.PushRequest: invalid JSON\n');
        return;
      }
      let n = 0;
      for (const s of parsed.streams) {
        for (const [ts, line] of s.values) {
          n++;
          // A set of keys, not a scan of every stored entry: pushes stay fast with tens of thousands stored.
          const key = JSON.stringify([orgId ?? null, s.stream, ts, line]);
          if (this.seen.has(key)) continue;
          this.seen.add(key);
          this.entries.push({ orgId, labels: s.stream, tsNs: BigInt(ts), line });
        }
      }
      this.pushes.push({ orgId, auth: req.headers.authorization, streams: parsed.streams.length, entries: n, at: Date.now() });
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/loki/api/v1/query_range') {
      const query = url.searchParams.get('query') ?? '';
      const m = /^\{([^}]*)\}$/.exec(query.trim());
      if (!m) {
        res.writeHead(400).end('parse error at line 1, col 1: syntax error: unexpected IDENTIFIER\n');
        return;
      }
      const matchers = m[1].split(',').filter(Boolean).map((p) => {
        const [k, v] = p.split('=');
        return [k.trim(), JSON.parse(v.trim())] as [string, string];
      });
      const start = BigInt(url.searchParams.get('start') ?? '0');
      const end = BigInt(url.searchParams.get('end') ?? String(BigInt(Date.now()) * 1_000_000n));
      const limit = Number(url.searchParams.get('limit') ?? '100');
      const hits = this.entries
        .filter((e) => e.orgId === orgId && e.tsNs >= start && e.tsNs < end && matchers.every(([k, v]) => e.labels[k] === v))
        .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0))
        .slice(0, limit);
      const streams = new Map<string, { stream: Record<string, string>; values: [string, string][] }>();
      for (const h of hits) {
        const k = JSON.stringify(h.labels);
        if (!streams.has(k)) streams.set(k, { stream: h.labels, values: [] });
        streams.get(k)!.values.push([h.tsNs.toString(), h.line]);
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [...streams.values()] } }));
      return;
    }
    res.writeHead(404).end('404 page not found\n');
  }
}
