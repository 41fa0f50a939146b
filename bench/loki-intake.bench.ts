/**
 * Loki intake benchmark: the CPU cost of reading pushes and lines, against references measured in
 * the same run (the machine is shared and noisy, so ratios are what to compare).
 *
 *   npm run bench -- loki-intake [--lines 20000] [--entries 5000] [--rounds 5]
 *
 * 1. Line formats: `parseLogLine` over `--lines` lines of each format (the ingest JSON shape, pino
 *    JSON, logfmt, nginx combined + $request_time, plain text), against `JSON.parse` of the ingest
 *    JSON lines (the work the intake did per line before it read formats).
 * 2. Push decoding: a Promtail-like push of `--entries` nginx lines, snappy-compressed: our checked
 *    `snappyDecode` + `decodePushProtobuf` against `snappyjs.uncompress` alone; the same push as
 *    JSON: `findDuplicateStreamLabels` against `JSON.parse` of the body.
 *
 * Each figure is the median of `--rounds` rounds. Prints the machine and one JSON line.
 */
import { cpus, loadavg } from 'os';
import { parseArgs } from 'util';
import { compressSync } from 'snappy';
import { uncompress } from 'snappyjs';
import { parseLogLine } from '../src/modules/ingestion/loki/log-line.parser';
import { decodePushProtobuf, findDuplicateStreamLabels, snappyDecode } from '../src/modules/ingestion/loki/loki-push.codec';
import { encodePushRequest } from '../test/support/loki-wire';
import { median } from './bench-service';

function timeMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { lines: { type: 'string', default: '20000' }, entries: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '5' } } });
  const nLines = Number(values.lines);
  const nEntries = Number(values.entries);
  const rounds = Number(values.rounds);
  const t = Date.UTC(2026, 10, 30, 12);
  const iso = (i: number) => new Date(t + i * 1000).toISOString();
  const formats: Record<string, (i: number) => string> = {
    ingest_json: (i) => JSON.stringify({ timestamp: iso(i), service: 'api', http: { request: { method: 'GET', path: `/items/${i}` }, response: { status_code: 200, bytes: 900 + i } }, performance: { duration_ms: 40 + (i % 50) } }),
    pino_json: (i) => JSON.stringify({ level: 30, time: t + i, pid: 7, msg: 'request completed', req: { method: 'GET', url: `/items/${i}` }, res: { statusCode: 200 }, responseTime: 40 + (i % 50) }),
    logfmt: (i) => `ts=${iso(i)} level=info msg="request done" method=GET path=/items/${i} status=200 duration=${40 + (i % 50)}ms bytes=${900 + i}`,
    nginx: (i) => `10.0.${i % 250}.1 - - [30/Nov/2026:12:00:${String(i % 60).padStart(2, '0')} +0000] "GET /items/${i}?q=1 HTTP/1.1" 200 ${900 + i} "-" "Mozilla/5.0 (X11; Linux x86_64)" 0.0${40 + (i % 50)} 0.0${38 + (i % 50)}`,
    text: (i) => `${iso(i).replace('T', ' ').replace('Z', '')} INFO [worker-${i % 8}] processed job ${i} in ${40 + (i % 50)} ms`,
  };
  const ctx = { labels: { service: 'api' }, entryTime: new Date(t) };
  const lineResults: Record<string, { ms: number; linesPerSec: number; vsJsonParse: number }> = {};
  const jsonLines = Array.from({ length: nLines }, (_, i) => formats.ingest_json(i));
  const reference = median(Array.from({ length: rounds }, () => timeMs(() => jsonLines.forEach((l) => JSON.parse(l)))));
  for (const [name, make] of Object.entries(formats)) {
    const lines = Array.from({ length: nLines }, (_, i) => make(i));
    for (const l of lines.slice(0, 500)) parseLogLine(l, ctx); // warm-up
    const ms = median(Array.from({ length: rounds }, () => timeMs(() => lines.forEach((l) => parseLogLine(l, ctx)))));
    lineResults[name] = { ms: Math.round(ms * 10) / 10, linesPerSec: Math.round((nLines / ms) * 1000), vsJsonParse: Math.round((ms / reference) * 10) / 10 };
  }

  const lines = Array.from({ length: nEntries }, (_, i) => formats.nginx(i));
  const raw = encodePushRequest([
    { labels: '{filename="/var/log/nginx/access.log", job="nginx"}', entries: lines.map((line, i) => ({ seconds: 1_796_000_000 + i, line })) },
  ]);
  const body = compressSync(raw);
  const refUncompress = median(Array.from({ length: rounds }, () => timeMs(() => uncompress(body))));
  const oursDecode = median(Array.from({ length: rounds }, () => timeMs(() => decodePushProtobuf(snappyDecode(body, 64 << 20)))));
  const json = JSON.stringify({ streams: [{ stream: { filename: '/var/log/nginx/access.log', job: 'nginx' }, values: lines.map((l, i) => [`${1_796_000_000 + i}000000000`, l]) }] });
  const refParse = median(Array.from({ length: rounds }, () => timeMs(() => JSON.parse(json))));
  const dupScan = median(Array.from({ length: rounds }, () => timeMs(() => findDuplicateStreamLabels(json))));

  const machine = { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) };
  process.stdout.write(`machine: ${JSON.stringify(machine)}\n`);
  process.stdout.write(`lines (${nLines} each; JSON.parse of the ingest-shape lines: ${reference.toFixed(1)} ms)\n`);
  for (const [name, r] of Object.entries(lineResults)) process.stdout.write(`  ${name.padEnd(12)} ${r.ms.toFixed(1).padStart(8)} ms  ${String(r.linesPerSec).padStart(8)} lines/s  ${r.vsJsonParse}x JSON.parse\n`);
  process.stdout.write(
    `push of ${nEntries} nginx lines: protobuf ${body.length} B snappy (${raw.length} B raw): checked snappy + decode ${oursDecode.toFixed(1)} ms vs snappyjs.uncompress ${refUncompress.toFixed(1)} ms (${(oursDecode / refUncompress).toFixed(1)}x); ` +
      `JSON ${json.length} B: duplicate-label scan ${dupScan.toFixed(1)} ms vs JSON.parse ${refParse.toFixed(1)} ms (${(dupScan / refParse).toFixed(2)}x)\n`,
  );
  process.stdout.write(
    JSON.stringify({ bench: 'loki-intake', machine, lines: lineResults, push: { entries: nEntries, decodeMs: oursDecode, uncompressMs: refUncompress, dupScanMs: dupScan, jsonParseMs: refParse } }) + '\n',
  );
}
