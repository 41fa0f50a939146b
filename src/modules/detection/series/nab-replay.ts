/**
 * Replay of NAB-format CSVs (`timestamp,value`, timestamps `YYYY-MM-DD HH:MM:SS` in UTC)
 * through {@link SeriesDetector}, writing `timestamp,value,anomaly_score` with the likelihood
 * as the score, as the Numenta Anomaly Benchmark expects. One detector per file, two-sided,
 * missing points skipped (a NAB value is a measurement, not a count), no labels involved.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'fs';
import { dirname, join, relative, resolve, sep } from 'path';
import { parseArgs } from 'util';
import { SeriesDetectorError } from './errors';
import { SeriesDetector, SeriesDetectorOptions } from './series-detector';

/** Replay formats; `nab` is the only one so far (`ndjson` event replay is a later addition). */
export const REPLAY_FORMATS = ['nab'] as const;
/** A supported replay format. */
export type ReplayFormat = (typeof REPLAY_FORMATS)[number];

/** A parsed NAB CSV: the original cells (written back unchanged) and their parsed values. */
export interface NabSeries {
  readonly timestamps: string[];
  readonly valueCells: string[];
  readonly times: Float64Array;
  readonly values: Float64Array;
}

/** Detector options used for NAB files: two-sided, measurements (missing points skipped). */
export const NAB_DETECTOR_OPTIONS: SeriesDetectorOptions = { direction: 'both', missing: 'skip' };

const NAB_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/;

/**
 * Milliseconds since the epoch of a NAB timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
 * @throws SeriesDetectorError when the text is not such a timestamp.
 */
export function parseNabTimestamp(text: string): number {
  const m = NAB_TIMESTAMP.exec(text);
  const ms = m
    ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? Math.round(Number(m[7]) * 1000) : 0)
    : NaN;
  if (!Number.isFinite(ms))
    throw new SeriesDetectorError(`not a NAB timestamp (YYYY-MM-DD HH:MM:SS): ${JSON.stringify(text)}`);
  return ms;
}

/**
 * Parse the text of a NAB CSV. The header must name `timestamp` and `value` columns (others
 * are ignored); an empty value cell is a missing point. Rows stay in file order, also where a
 * timestamp repeats or goes back (a clock change): the detector handles those.
 * @throws SeriesDetectorError naming the file and line of the first bad row.
 */
export function parseNabCsv(text: string, name = 'input'): NabSeries {
  const lines = text.split('\n');
  let i = 0;
  const next = (): string | null => {
    while (i < lines.length) {
      const line = lines[i++].replace(/\r$/, '');
      if (line.trim() !== '') return line;
    }
    return null;
  };
  const header = next();
  if (header === null) throw new SeriesDetectorError(`${name}: empty file`);
  const cols = header.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const ti = cols.indexOf('timestamp');
  const vi = cols.indexOf('value');
  if (ti < 0 || vi < 0)
    throw new SeriesDetectorError(
      `${name}: header must have timestamp and value columns, got ${JSON.stringify(header)}`,
    );
  const timestamps: string[] = [];
  const valueCells: string[] = [];
  const times: number[] = [];
  const values: number[] = [];
  for (let line = next(); line !== null; line = next()) {
    const cells = line.split(',');
    const ts = (cells[ti] ?? '').trim();
    const vs = (cells[vi] ?? '').trim();
    let t: number;
    try {
      t = parseNabTimestamp(ts);
    } catch (e) {
      throw new SeriesDetectorError(`${name}:${i}: ${(e as Error).message}`);
    }
    const v = vs === '' ? NaN : Number(vs);
    if (vs !== '' && !Number.isFinite(v))
      throw new SeriesDetectorError(`${name}:${i}: value is not a number: ${JSON.stringify(vs)}`);
    timestamps.push(ts);
    valueCells.push(vs);
    times.push(t);
    values.push(v);
  }
  return { timestamps, valueCells, times: Float64Array.from(times), values: Float64Array.from(values) };
}

/**
 * Anomaly score (the likelihood) of every row of `series`, one fresh detector, in file order: a
 * row repeating the previous timestamp scores 0 (its point was scored already), a row going
 * back in time is scored without being learned (see {@link SeriesDetector.update}).
 */
export function scoreNabSeries(
  series: Pick<NabSeries, 'times' | 'values'>,
  options: SeriesDetectorOptions = NAB_DETECTOR_OPTIONS,
): Float64Array {
  const sut = new SeriesDetector(options);
  const n = series.times.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = series.values[i];
    out[i] = sut.update(series.times[i], Number.isNaN(v) ? null : v).likelihood;
  }
  return out;
}

/** Render the results CSV (`timestamp,value,anomaly_score`), original cells kept verbatim. */
export function formatNabResults(series: NabSeries, scores: ArrayLike<number>): string {
  const parts: string[] = ['timestamp,value,anomaly_score\n'];
  for (let i = 0; i < series.timestamps.length; i++) {
    parts.push(`${series.timestamps[i]},${series.valueCells[i]},${scores[i]}\n`);
  }
  return parts.join('');
}

/** Summary of a replay. */
export interface ReplaySummary {
  readonly files: number;
  readonly rows: number;
}

/** Options of {@link replayNab}. */
export interface ReplayOptions {
  readonly format?: string;
  /** Called after each file of a tree replay (for progress on a terminal). */
  readonly onFile?: (done: number, total: number, file: string) => void;
  /** Detector options (defaults to {@link NAB_DETECTOR_OPTIONS}). */
  readonly detector?: SeriesDetectorOptions;
}

/** Where to read and write: one file, or a whole folder tree (same relative paths). */
export type ReplayTarget =
  { readonly input: string; readonly output: string } | { readonly inputDir: string; readonly outputDir: string };

/**
 * Replay one NAB CSV or every `*.csv` under a folder (recursively, sorted, same relative paths
 * in the output folder). Each output is written to a temporary file and renamed, so a reader
 * never sees half a file.
 * @throws SeriesDetectorError on an unsupported format, a bad CSV, or an input folder without CSVs.
 */
export function replayNab(target: ReplayTarget, options: ReplayOptions = {}): ReplaySummary {
  const format = options.format ?? 'nab';
  if (format === 'ndjson')
    throw new SeriesDetectorError(
      '--format ndjson replays events, not NAB series: run it through the CLI replay command',
    );
  if (!(REPLAY_FORMATS as readonly string[]).includes(format)) {
    throw new SeriesDetectorError(
      `unknown replay format ${JSON.stringify(format)} (supported: ${REPLAY_FORMATS.join(', ')})`,
    );
  }
  const jobs: Array<[string, string, string]> = [];
  if ('input' in target) {
    jobs.push([target.input, target.output, target.input]);
  } else {
    // An output folder inside the input folder must not be read back as input.
    const outAbs = resolve(target.outputDir) + sep;
    const files = listCsv(target.inputDir).filter((f) => !resolve(f).startsWith(outAbs));
    if (files.length === 0) throw new SeriesDetectorError(`${target.inputDir}: no .csv files found`);
    for (const f of files) {
      const rel = relative(target.inputDir, f);
      jobs.push([f, join(target.outputDir, rel), rel]);
    }
  }
  let rows = 0;
  jobs.forEach(([input, output, label], k) => {
    const series = parseNabCsv(readFileSync(input, 'utf8'), input);
    const scores = scoreNabSeries(series, options.detector);
    mkdirSync(dirname(output), { recursive: true });
    const tmp = `${output}.${process.pid}.tmp`;
    writeFileSync(tmp, formatNabResults(series, scores));
    renameSync(tmp, output);
    rows += scores.length;
    options.onFile?.(k + 1, jobs.length, label);
  });
  return { files: jobs.length, rows };
}

/** Parsed command line of `replay`. */
export interface ReplayCommand {
  readonly target: ReplayTarget;
  readonly format: string;
}

/**
 * Parse `replay` arguments: `--input F --output G` or `--input-dir D --output-dir O`, and
 * `--format nab` (the default). The format is checked by {@link replayNab}, where new formats plug in.
 * @throws SeriesDetectorError naming the missing or conflicting option.
 */
export function parseReplayArgs(args: string[]): ReplayCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        input: { type: 'string' },
        output: { type: 'string' },
        'input-dir': { type: 'string' },
        'output-dir': { type: 'string' },
        format: { type: 'string', default: 'nab' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new SeriesDetectorError((e as Error).message);
  }
  const file = values.input !== undefined || values.output !== undefined;
  const dir = values['input-dir'] !== undefined || values['output-dir'] !== undefined;
  const usage = 'use --input F --output G, or --input-dir D --output-dir O';
  if (file === dir) throw new SeriesDetectorError(file ? `one file or one folder, not both: ${usage}` : usage);
  if (file) {
    if (values.input === undefined || values.output === undefined)
      throw new SeriesDetectorError(`--input and --output go together: ${usage}`);
    return { target: { input: values.input, output: values.output }, format: values.format };
  }
  if (values['input-dir'] === undefined || values['output-dir'] === undefined) {
    throw new SeriesDetectorError(`--input-dir and --output-dir go together: ${usage}`);
  }
  return { target: { inputDir: values['input-dir'], outputDir: values['output-dir'] }, format: values.format };
}

/** Every `*.csv` under `dir`, recursively, sorted. */
function listCsv(dir: string): string[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new SeriesDetectorError(`${dir}: no such folder`);
  }
  if (!st.isDirectory()) throw new SeriesDetectorError(`${dir}: not a folder`);
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.csv')) out.push(p);
    }
  };
  walk(dir);
  return out;
}
