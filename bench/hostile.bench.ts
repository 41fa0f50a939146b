/**
 * Hostile-request benchmark (issue 15): how long single heavy requests of at most 1 MB hold the
 * event loop, seen from outside as the worst `/healthz` latency while each one runs, against the
 * same probe with nothing else running (the reference, measured in the same run: the machine is
 * shared and noisy).
 *
 *   npm run bench -- hostile [--database-url URL] [--repeat 3] [--keep-db]
 *
 * It creates a fresh database on the server of --database-url, starts `dist/src/main.js`, then for
 * each request kind sends it `--repeat` times (each on a new connection) while probing `/healthz`
 * every 5 ms, and prints the answer's status, its time (for a replay: until the 202), and the worst
 * probe latency (for a replay: also over the 3 s after the 202, while the job runs).
 */
import http from 'http';
import { cpus, loadavg, totalmem } from 'os';
import { gzipSync } from 'zlib';
import { parseArgs } from 'util';
import { dropDatabase, freshDatabase, KEY, startService } from './bench-service';

interface Case {
  name: string;
  path: string;
  body: Buffer | string;
  headers?: Record<string, string>;
}

const MB = 1024 * 1024;
const iso = (t: number) => new Date(t).toISOString();

function cases(): Case[] {
  const now = Date.now();
  const arrayOfEmpty = (bytes: number) => '[' + Array(Math.floor(bytes / 3)).fill('{}').join(',') + ']';
  const event = (t: number, extra: Record<string, unknown> = {}) => ({ timestamp: iso(t), service: 'web', duration_ms: 100, status_code: 200, ...extra });
  const perMinute: unknown[] = [];
  for (let i = 0; JSON.stringify(perMinute).length < 0.95 * MB; i++) perMinute.push({ timestamp: iso(now - 90 * 86_400_000 + i * 60_000), service: 's', duration_ms: 1 });
  const nulBatch: unknown[] = [];
  for (let i = 0; JSON.stringify(nulBatch).length < 0.95 * MB; i++) nulBatch.push(event(now - i, i % 2 ? { note: 'a\u0000b' } : { bytes: 1e20 }));
  return [
    { name: '1 MB JSON array on /silences (object route)', path: '/silences', body: arrayOfEmpty(0.99 * MB) },
    { name: '10 MB of {} gzipped to < 1 MB on /replay', path: '/replay', body: gzipSync(arrayOfEmpty(9.9 * MB)), headers: { 'Content-Encoding': 'gzip' } },
    { name: '1 MB nested 170k deep on /ingest', path: '/ingest', body: '['.repeat(0.49 * MB) + ']'.repeat(0.49 * MB) },
    { name: 'replay: two events ten years apart', path: '/replay', body: JSON.stringify({ events: [event(now - 3650 * 86_400_000), event(now)] }) },
    { name: `replay: ${perMinute.length} one-per-minute events (1 MB)`, path: '/replay', body: JSON.stringify({ events: perMinute, report: true }) },
    { name: `/ingest: ${nulBatch.length} items with NUL or bytes 1e20 (1 MB)`, path: '/ingest', body: JSON.stringify(nulBatch) },
  ];
}

/** One POST on a connection of its own (no pooled keep-alive socket the server may be closing). */
function post(url: string, headers: Record<string, string>, body: Buffer | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Probes /healthz until `stop()`; returns the worst latency (ms) and how many probes failed. */
async function probe(base: string, stop: () => boolean): Promise<{ worst: number; failed: number }> {
  let worst = 0;
  let failed = 0;
  while (!stop()) {
    const t = performance.now();
    await fetch(`${base}/healthz`)
      .then((r) => r.arrayBuffer())
      .catch(() => failed++);
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { worst, failed };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      repeat: { type: 'string', default: '3' },
      'keep-db': { type: 'boolean', default: false },
    },
  });
  const repeat = Number(values.repeat);
  const dbUrl = await freshDatabase(values['database-url']!);
  const service = await startService(dbUrl, { env: { INGEST_MAX_BYTES: String(10 * MB) } });
  const base = service.base;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
  try {
    let idleDone = false;
    const idle = probe(base, () => idleDone);
    await new Promise((r) => setTimeout(r, 2000));
    idleDone = true;
    const ref = await idle;
    console.log(`reference: worst /healthz over 2 s with nothing else running: ${ref.worst.toFixed(1)} ms (${ref.failed} failed)\n`);
    console.log('| request | status | answer ms (median) | worst /healthz ms (max of runs) | failed probes |');
    console.log('|---|---|---|---|---|');
    for (const c of cases()) {
      const statuses = new Set<number>();
      const times: number[] = [];
      let worst = 0;
      let failed = 0;
      for (let i = 0; i < repeat; i++) {
        let done = false;
        const p = probe(base, () => done);
        const t = performance.now();
        try {
          const status = await post(`${base}${c.path}`, { 'X-API-Key': KEY, 'Content-Type': 'application/json', ...c.headers }, c.body);
          statuses.add(status);
          times.push(performance.now() - t);
          // A replay job runs after its 202: keep probing while it does.
          if (status === 202) await new Promise((r) => setTimeout(r, 3000));
        } catch (e) {
          statuses.add(-1);
          console.error(`${c.name}: ${(e as Error).message}`);
          times.push(performance.now() - t);
        }
        done = true;
        const r = await p;
        worst = Math.max(worst, r.worst);
        failed += r.failed;
      }
      times.sort((a, b) => a - b);
      console.log(`| ${c.name} | ${[...statuses].join(', ')} | ${times[Math.floor(times.length / 2)].toFixed(0)} | ${worst.toFixed(1)} | ${failed} |`);
    }
  } finally {
    await service.stop();
    if (!values['keep-db']) await dropDatabase(dbUrl);
  }
}
