import { Agent, request as httpRequest } from 'http';

/** How one `POST /ingest` ended: its status (with the error `code` and `Connection` header), or a socket error. Times in epoch ms. */
export type IngestOutcome = { ids: string[]; sentAt: number; at: number } & ({ status: number; code?: string; connection?: string } | { error: string });

/**
 * `POST /ingest` of a JSON `body` (whose event ids are `ids`) to 127.0.0.1:`port` over a keep-alive
 * `agent`, answering how it ended; never throws (a reset or refused connection is an outcome). Shared by
 * the SIGTERM scenario of `bench/faults.bench.ts` and `test/shutdown.e2e-spec.ts`.
 */
export function postIngest(agent: Agent, port: number, key: string, body: string, ids: string[]): Promise<IngestOutcome> {
  const sentAt = Date.now();
  return new Promise((done) => {
    const req = httpRequest(
      { agent, host: '127.0.0.1', port, method: 'POST', path: '/ingest', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-api-key': key } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: string }).code;
          } catch {
            code = undefined;
          }
          done({ ids, status: res.statusCode ?? 0, code, connection: res.headers.connection, sentAt, at: Date.now() });
        });
        res.on('error', (e: NodeJS.ErrnoException) => done({ ids, error: e.code ?? e.message, sentAt, at: Date.now() }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => done({ ids, error: e.code ?? e.message, sentAt, at: Date.now() }));
    req.end(body);
  });
}
