/**
 * Series detector benchmark: update cost per point relative to parsing the same CSVs, and state
 * size per series.
 *
 *   node dist/bench/index.js series [--input-dir /work/shared/data/nab-dev] [--rounds 5]
 *                                   [--reference OTHER/dist]
 *
 * Every `*.csv` under the folder (NAB layout: `timestamp,value`) is read into memory once. Each
 * round then times, back to back on the same machine, (a) parsing every file's text
 * (`parseNabCsv`: timestamps and numbers) and (b) feeding every parsed series through a fresh
 * `SeriesDetector` (the NAB replay configuration). The figure that counts is the ratio of the
 * two per point, median over rounds: the machine is shared and noisy, a ratio within one run
 * is not. Times are the process's CPU time (`process.cpuUsage`), not wall time. State size (the figure stored per series, limit 16 KB): the JSON of each detector's
 * state at the end of its file, and, for a live per-minute series after 8 days (largest daily and
 * weekly profiles), both the JSON and the heap taken by restored copies.
 * With `--reference`, the compiled tree of another build (e.g. a checkout of an earlier commit after
 * `npm run build`), each round also feeds the same series through that build's detector, right
 * after this one's: `update_over_reference` is the cost per point relative to it, the figure that
 * says "no dearer than before" on a noisy machine.
 * Prints `#` context lines, then one JSON line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
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
      reference: { type: 'string' },
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

  const reference = values.reference === undefined ? null : loadReference(values.reference);

  // Warm-up so both code paths are optimised before timing.
  runDetectors(parsed.slice(0, 2));
  if (reference) runDetectors(parsed.slice(0, 2), reference);
  parseAll(texts.slice(0, 2));

  const parseNs: number[] = [];
  const updateNs: number[] = [];
  const referenceNs: number[] = [];
  let sink = 0;
  /** CPU ns per point of one pass of `Detector` over every series. */
  const timed = (Detector?: DetectorClass): number => {
    const t = cpuNs();
    sink += runDetectors(parsed, Detector).checksum;
    return (cpuNs() - t) / points;
  };
  for (let r = 0; r < rounds; r++) {
    const t0 = cpuNs();
    sink += parseAll(texts);
    parseNs.push((cpuNs() - t0) / points);
    let vsReference = '';
    if (reference) {
      // Alternate which build goes first, so neither always runs on a warmer cache.
      if (r % 2 === 0) {
        updateNs.push(timed());
        referenceNs.push(timed(reference));
      } else {
        referenceNs.push(timed(reference));
        updateNs.push(timed());
      }
      vsReference = `, reference ${referenceNs[r].toFixed(0)} ns/point, update/reference ${(updateNs[r] / referenceNs[r]).toFixed(2)}`;
    } else {
      updateNs.push(timed());
    }
    process.stdout.write(
      `# round ${r + 1}: parse ${parseNs[r].toFixed(0)} ns/point, update ${updateNs[r].toFixed(0)} ns/point, ratio ${(updateNs[r] / parseNs[r]).toFixed(2)}${vsReference}\n`,
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
      ...(reference
        ? {
            reference: values.reference,
            reference_ns_per_point: median(referenceNs),
            update_over_reference: median(updateNs.map((u, i) => u / referenceNs[i])),
          }
        : {}),
      state_json_bytes_nab_median: median(jsonBytes),
      state_json_bytes_nab_max: Math.max(...jsonBytes),
      state_json_bytes_live: liveJson.length,
      state_json_bytes_within_16k: Math.max(liveJson.length, ...jsonBytes) <= 16 * 1024,
      state_heap_bytes_live: heap,
      checksum: sink > 0 ? 1 : 0,
    }) + '\n',
  );
}

/**
 * CPU time of this process in ns (user + system): on a shared machine, wall time also counts the
 * time spent waiting for a core, which is the other work's, not ours.
 */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function parseAll(texts: string[]): number {
  let n = 0;
  for (const t of texts) n += parseNabCsv(t).times.length;
  return n;
}

/** The detector class of another build's compiled tree (`<dist>/src/modules/detection/series/series-detector.js`). */
function loadReference(dist: string): DetectorClass {
  const mod = require(resolve(dist, 'src/modules/detection/series/series-detector.js')) as {
    SeriesDetector?: DetectorClass;
  };
  if (typeof mod.SeriesDetector !== 'function') throw new Error(`${dist}: no SeriesDetector in that build`);
  return mod.SeriesDetector;
}

/** What the bench needs of a detector class, this build's or a reference one's. */
type DetectorClass = new (options: typeof NAB_DETECTOR_OPTIONS) => {
  update(t: number, v: number | null): { likelihood: number };
};

/** Feed each series through a fresh detector; returns a checksum (keeps the work observable) and state sizes. */
function runDetectors(
  series: NabSeries[],
  Detector: DetectorClass = SeriesDetector,
): { checksum: number; jsonBytes: number[] } {
  let checksum = 0;
  const jsonBytes: number[] = [];
  for (const s of series) {
    const d = new Detector(NAB_DETECTOR_OPTIONS);
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
