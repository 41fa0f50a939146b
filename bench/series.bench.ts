/**
 * Series detector benchmark: update cost per point relative to parsing the same CSVs, and state
 * size per series.
 *
 *   node dist/bench/index.js series [--input-dir /work/shared/data/nab-dev] [--rounds 5]
 *
 * Every `*.csv` under the folder (NAB layout: `timestamp,value`) is read into memory once. Each
 * round then times, back to back on the same machine, (a) parsing every file's text
 * (`parseNabCsv`: timestamps and numbers) and (b) feeding every parsed series through a fresh
 * `SeriesDetector` (the NAB replay configuration). The figure that counts is the ratio of the
 * two per point, median over rounds: the machine is shared and noisy, a ratio within one run
 * is not. State size (the figure stored per series, limit 16 KB): the JSON of each detector's
 * state at the end of its file, and, for a live per-minute series after 8 days (largest daily and
 * weekly profiles), both the JSON and the heap taken by restored copies.
 * Prints `#` context lines, then one JSON line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { NAB_DETECTOR_OPTIONS, NabSeries, parseNabCsv } from '../src/modules/detection/series/nab-replay';
import { SeriesDetector, seriesDefaultsFor } from '../src/modules/detection/series/series-detector';

/** Entry point used by bench/index.ts. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'input-dir': { type: 'string', default: '/work/shared/data/nab-dev' },
      rounds: { type: 'string', default: '5' },
      copies: { type: 'string', default: '200' },
    },
    strict: true,
  });
  const rounds = toInt(values.rounds, '--rounds');
  const copies = toInt(values.copies, '--copies');
  const files = listCsv(values['input-dir']);
  if (files.length === 0) throw new Error(`${values['input-dir']}: no .csv files`);
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  const parsed: NabSeries[] = texts.map((t, i) => parseNabCsv(t, files[i]));
  const points = parsed.reduce((a, s) => a + s.times.length, 0);

  const cpu = cpus()[0]?.model ?? 'unknown';
  process.stdout.write(
    `# node ${process.version}, ${cpu}, ${cpus().length} cpus, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  process.stdout.write(`# ${files.length} files, ${points} points from ${values['input-dir']}, ${rounds} rounds\n`);

  // Warm-up so both code paths are optimised before timing.
  runDetectors(parsed.slice(0, 2));
  parseAll(texts.slice(0, 2));

  const parseNs: number[] = [];
  const updateNs: number[] = [];
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    sink += parseAll(texts);
    const t1 = process.hrtime.bigint();
    sink += runDetectors(parsed).checksum;
    const t2 = process.hrtime.bigint();
    parseNs.push(Number(t1 - t0) / points);
    updateNs.push(Number(t2 - t1) / points);
    process.stdout.write(
      `# round ${r + 1}: parse ${parseNs[r].toFixed(0)} ns/point, update ${updateNs[r].toFixed(0)} ns/point, ratio ${(updateNs[r] / parseNs[r]).toFixed(2)}\n`,
    );
  }
  const ratios = updateNs.map((u, i) => u / parseNs[i]);

  const { jsonBytes } = runDetectors(parsed);
  const live = liveDetector();
  const liveJson = JSON.stringify(live);
  const heap = heapPerCopy(liveJson, copies);

  process.stdout.write(
    `# NAB state JSON bytes per series: median ${median(jsonBytes)}, max ${Math.max(...jsonBytes)}; ` +
      `live 1-minute series: JSON ${liveJson.length} bytes, heap ${heap === null ? 'n/a' : heap.toFixed(0)} bytes (${copies} restored copies)\n`,
  );
  process.stdout.write(
    JSON.stringify({
      files: files.length,
      points,
      rounds,
      parse_ns_per_point: median(parseNs),
      update_ns_per_point: median(updateNs),
      update_over_parse: median(ratios),
      update_over_parse_min: Math.min(...ratios),
      update_over_parse_max: Math.max(...ratios),
      state_json_bytes_nab_median: median(jsonBytes),
      state_json_bytes_nab_max: Math.max(...jsonBytes),
      state_json_bytes_live: liveJson.length,
      state_json_bytes_within_16k: Math.max(liveJson.length, ...jsonBytes) <= 16 * 1024,
      state_heap_bytes_live: heap,
      checksum: sink > 0 ? 1 : 0,
    }) + '\n',
  );
}

function parseAll(texts: string[]): number {
  let n = 0;
  for (const t of texts) n += parseNabCsv(t).times.length;
  return n;
}

/** Feed each series through a fresh detector; returns a checksum (keeps the work observable) and state sizes. */
function runDetectors(series: NabSeries[]): { checksum: number; jsonBytes: number[] } {
  let checksum = 0;
  const jsonBytes: number[] = [];
  for (const s of series) {
    const d = new SeriesDetector(NAB_DETECTOR_OPTIONS);
    const { times, values } = s;
    for (let i = 0; i < times.length; i++) {
      const v = values[i];
      checksum += d.update(times[i], Number.isNaN(v) ? null : v).likelihood;
    }
    jsonBytes.push(JSON.stringify(d).length);
  }
  return { checksum, jsonBytes };
}

/** A live per-minute request-count detector after 8 days (both seasonal profiles allocated). */
function liveDetector(): SeriesDetector {
  const d = new SeriesDetector({ ...seriesDefaultsFor('request_count'), intervalMs: 60_000 });
  const t0 = Date.UTC(2025, 0, 6);
  for (let i = 0; i < 8 * 1440; i++) {
    const daily = Math.sin(((i % 1440) / 1440) * 2 * Math.PI);
    d.update(t0 + i * 60_000, Math.round(100 + 60 * daily + 10 * Math.sin(i * 1.7)));
  }
  return d;
}

/** Heap + array-buffer bytes per restored copy of a detector, or null when gc cannot be forced. */
function heapPerCopy(json: string, copies: number): number | null {
  let gc: (() => void) | undefined;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
  const used = (): number => {
    gc!();
    gc!();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const state = JSON.parse(json) as unknown;
  const before = used();
  const keep: SeriesDetector[] = [];
  for (let i = 0; i < copies; i++) keep.push(SeriesDetector.fromJSON(state));
  const after = used();
  return keep.length > 0 ? (after - before) / keep.length : null;
}

function listCsv(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.csv')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

function toInt(s: string, flag: string): number {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer, got ${s}`);
  return v;
}
