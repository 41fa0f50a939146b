/**
 * A Loki push endpoint that reads and drops what it is sent, in its own process, so that the ingest
 * bench can run the service with shipping on (LOKI_PUSH_URL) without the sink's work landing on the
 * bench's sender. Started with {@link startLokiSink}; `GET /stats` answers the pushes and bytes read;
 * `query_range` (the scheduler's pulls) answers an empty result.
 */
import { fork } from 'child_process';
import { createServer } from 'http';

export interface LokiSink {
  /** LOKI_PUSH_URL for the service. */
  pushUrl: string;
  /** Pushes received and their bytes (as sent: compressed if the service compressed them). */
  stats(): Promise<{ pushes: number; bytes: number }>;
  stop(): Promise<void>;
}

/** Forks this file as a child process and waits for its port. @throws when it does not start within 10 s. */
export async function startLokiSink(): Promise<LokiSink> {
  const child = fork(__filename, ['--serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Loki sink did not start within 10 s')), 10_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve((m as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`the Loki sink exited (${code})`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    pushUrl: `${base}/loki/api/v1/push`,
    stats: async () => (await (await fetch(`${base}/stats`)).json()) as { pushes: number; bytes: number },
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

if (process.argv.includes('--serve') && process.send) {
  let pushes = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/loki/api/v1/push')) {
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        pushes++;
        res.writeHead(204).end();
      });
      return;
    }
    if (req.method === 'GET' && req.url?.startsWith('/loki/api/v1/query_range')) {
      // The scheduler's pulls (LOKI_DETECTION_QUERY): nothing stored here to find.
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [] } }));
      return;
    }
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ pushes, bytes }));
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
  process.on('SIGTERM', () => process.exit(0));
}
