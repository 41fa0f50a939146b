/**
 * Leave-one-category-out check of the series detector on NAB-style data: does a configuration
 * chosen on some categories hold on the one it was not chosen on?
 *
 *   npm run bench -- nab-loco --input-dir DIR --scorer PATH/nab-score.mjs [--grid default|none]
 *                             [--set key=value ...] [--within CATEGORY]
 *
 * DIR holds `<category>/<file>.csv` and `combined_windows.json` (the layout of NAB and of its
 * development subset). Every configuration of the grid (a few values of a few constants of
 * `SeriesTuning`, see GRID; `--set` fixes others, e.g. `--set cooldown=100 --set tail.memory=6000`)
 * is replayed over every file once, strictly causally, exactly as `replay --format nab` does.
 * Then, for each category C:
 *   - tune: the configuration and threshold with the best NAB standard score on the other
 *     categories (the scorer picks the threshold, as NAB does);
 *   - hold out: C scored with that configuration and that threshold fixed (scores binarised at it,
 *     so the scorer cannot re-pick it on C). A category without anomaly windows cannot be
 *     normalised (null = perfect = 0): its false-positive rows are reported instead;
 *   - in-sample: C scored with the configuration and threshold tuned on all categories. The
 *     gap between the mean held-out and the mean in-sample score is the overfitting measured;
 *   - the same two with the threshold left to the scorer on C alone ("own threshold"), and the
 *     held-out configuration's score on all categories, threshold by the scorer over all of them
 *     (the NAB protocol: one threshold for the corpus, the configuration fixed beforehand).
 * Also reported: the best configuration on all categories, its score, and each held-out
 * configuration's score on all categories. With `--within C` the same is done inside one category:
 * its files are split in two halves (alternating in name order), tuned on one, scored on the other
 * (a check that needs no artificial data). Scoring is done by the NAB-compatible scorer given
 * with `--scorer` (run as a child process, `--json`). Prints `#` lines, then one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  formatNabResults,
  NAB_DETECTOR_OPTIONS,
  NabSeries,
  parseNabCsv,
  scoreNabSeries,
} from '../src/modules/detection/series/nab-replay';
import { SeriesTuning } from '../src/modules/detection/series/series-detector';

/** Constants searched, a few values each (the rest stay at DEFAULT_TUNING). */
const GRIDS: Record<string, Record<string, number[]>> = {
  default: {
    priorWeight: [6, 12, 24],
    cooldown: [100, 200, 400],
    'tail.memory': [1500, 3000, 6000],
  },
  none: {},
};

interface Config {
  readonly name: string;
  readonly tuning: Partial<SeriesTuning>;
}

interface ScoreResult {
  readonly score: number | null;
  readonly threshold: number | null;
  readonly fp: number;
  readonly windowsDetected: number;
  readonly windows: number;
}

/** Entry point used by bench/index.ts. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'input-dir': { type: 'string' },
      scorer: { type: 'string' },
      grid: { type: 'string', default: 'default' },
      set: { type: 'string', multiple: true, default: [] },
      within: { type: 'string' },
    },
    strict: true,
  });
  const dir = values['input-dir'];
  const scorer = values.scorer;
  if (!dir || !scorer) throw new Error('--input-dir and --scorer are required');
  const grid = GRIDS[values.grid];
  if (!grid) throw new Error(`--grid must be one of ${Object.keys(GRIDS).join(', ')}`);
  const fixed: Record<string, number | number[]> = {};
  for (const kv of values.set) {
    const [k, v] = kv.split('=');
    const parsed: unknown = v === undefined ? undefined : JSON.parse(v);
    const ok =
      typeof parsed === 'number' ||
      (Array.isArray(parsed) && parsed.every((x) => typeof x === 'number' && Number.isFinite(x)));
    if (!k || !ok) throw new Error(`--set key=number or key=[numbers], got ${kv}`);
    fixed[k] = parsed as number | number[];
  }
  const labels = join(dir, 'combined_windows.json');
  const files = listCsv(dir).map((rel) => ({ rel, series: parseNabCsv(readFileSync(join(dir, rel), 'utf8'), rel) }));
  // A group is what is held out: a category folder, or with --within C one half of C's files.
  const groups = groupFiles(
    files.map((f) => f.rel),
    values.within,
  );
  const categories = [...groups.keys()].sort();
  if (categories.length < 2) throw new Error(`${dir}: needs at least two category folders`);
  const configs = expand(grid, fixed);
  process.stdout.write(
    `# ${[...groups.values()].flat().length} files in ${categories.length} groups, ${configs.length} configurations\n`,
  );

  const work = mkdtempSync(join(tmpdir(), 'nab-loco-'));
  try {
    const score = (results: string, cats: string[], binariseAt?: number): ScoreResult =>
      scoreCategories(
        scorer,
        dir,
        labels,
        results,
        work,
        cats.flatMap((c) => groups.get(c) ?? []),
        binariseAt,
      );
    // One replay per configuration, kept on disk: every subset below is scored from it.
    const outDirs = configs.map((c, k) => {
      const out = join(work, `c${k}`);
      for (const f of files)
        writeResults(
          join(out, f.rel),
          f.series,
          scoreNabSeries(f.series, { ...NAB_DETECTOR_OPTIONS, tuning: c.tuning }),
        );
      return out;
    });
    const onAll = configs.map((_, k) => score(outDirs[k], categories));
    const bestAll = argmax(onAll.map((r) => r.score ?? -Infinity));
    process.stdout.write(`# tuned on all: ${configs[bestAll].name} -> ${fmt(onAll[bestAll].score)}\n`);

    const splits = categories.map((held) => {
      const train = categories.filter((c) => c !== held);
      const onTrain = configs.map((_, k) => score(outDirs[k], train));
      const k = argmax(onTrain.map((r) => r.score ?? -Infinity));
      const threshold = onTrain[k].threshold;
      const heldOut = score(outDirs[k], [held], threshold ?? Infinity);
      // The same category in-sample: configuration and threshold tuned on all categories.
      const inSample = score(outDirs[bestAll], [held], onAll[bestAll].threshold ?? Infinity);
      // The category alone, the scorer picking its threshold (as NAB does over what it scores).
      const heldOutOwn = score(outDirs[k], [held]);
      const inSampleOwn = score(outDirs[bestAll], [held]);
      const split = {
        heldOut: held,
        config: configs[k].name,
        trainScore: onTrain[k].score,
        threshold,
        heldOutScore: heldOut.score,
        heldOutFp: heldOut.fp,
        heldOutWindows: `${heldOut.windowsDetected}/${heldOut.windows}`,
        inSampleScore: inSample.score,
        inSampleFp: inSample.fp,
        heldOutOwnThreshold: heldOutOwn.score,
        inSampleOwnThreshold: inSampleOwn.score,
        allScore: onAll[k].score,
      };
      process.stdout.write(
        `# hold out ${held}: tuned ${split.config} (train ${fmt(split.trainScore)}, threshold ${fmt(threshold, 4)}) -> ` +
          `held out ${fmt(split.heldOutScore)} (windows ${split.heldOutWindows}, FP rows ${split.heldOutFp}; ` +
          `in-sample ${fmt(split.inSampleScore)}, FP rows ${split.inSampleFp}); own threshold: held out ` +
          `${fmt(split.heldOutOwnThreshold)}, in-sample ${fmt(split.inSampleOwnThreshold)}; all ${fmt(split.allScore)}\n`,
      );
      return split;
    });
    const normalised = splits.map((s) => s.heldOutScore).filter((x): x is number => x !== null);
    const meanHeldOut = mean(normalised);
    const meanInSample = mean(splits.map((s) => s.inSampleScore));
    const meanAll = splits.reduce((a, s) => a + (s.allScore ?? 0), 0) / splits.length;
    process.stdout.write(
      JSON.stringify({
        configurations: configs.length,
        grid: values.grid,
        fixed,
        tunedOnAll: { config: configs[bestAll].name, score: onAll[bestAll].score },
        splits,
        meanHeldOut,
        meanInSample,
        meanHeldOutOwnThreshold: mean(splits.map((s) => s.heldOutOwnThreshold)),
        meanInSampleOwnThreshold: mean(splits.map((s) => s.inSampleOwnThreshold)),
        heldOutSpread: normalised.length ? Math.max(...normalised) - Math.min(...normalised) : null,
        meanAllWithHeldOutConfig: meanAll,
      }) + '\n',
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Files by group: by category folder, or, with `within`, only the files of that category, split
 * in two halves (sorted names, alternating: `C#a` the 1st, 3rd, … file, `C#b` the others).
 */
function groupFiles(rels: string[], within: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (g: string, rel: string): void => void out.set(g, [...(out.get(g) ?? []), rel]);
  if (within === undefined) {
    for (const rel of rels) add(dirname(rel), rel);
    return out;
  }
  const mine = rels.filter((rel) => dirname(rel) === within).sort();
  if (mine.length < 2) throw new Error(`--within ${within}: needs a category folder with at least two files`);
  mine.forEach((rel, i) => add(`${within}#${i % 2 === 0 ? 'a' : 'b'}`, rel));
  return out;
}

/** Every combination of the grid's values, on top of the fixed settings. */
function expand(grid: Record<string, number[]>, fixed: Record<string, number | number[]>): Config[] {
  let out: Array<Record<string, number | number[]>> = [{ ...fixed }];
  for (const [k, vs] of Object.entries(grid)) {
    if (k in fixed) continue;
    out = out.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  }
  return out.map((c) => ({
    name:
      Object.entries(c)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',') || 'default',
    tuning: toTuning(c),
  }));
}

/** `{'tail.memory': 6000, cooldown: 100}` → `{tail: {memory: 6000}, cooldown: 100}`. */
function toTuning(flat: Record<string, number | number[]>): Partial<SeriesTuning> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const [a, b] = k.split('.');
    if (b === undefined) out[a] = v;
    else out[a] = { ...(out[a] as object | undefined), [b]: v };
  }
  return out as Partial<SeriesTuning>;
}

function writeResults(path: string, series: NabSeries, scores: ArrayLike<number>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, formatNabResults(series, scores));
}

/**
 * NAB standard score of the results of some files (paths relative to the data folder). With
 * `binariseAt`, scores are first replaced by 1 at or above it and 0 below, which fixes the
 * threshold.
 */
function scoreCategories(
  scorer: string,
  data: string,
  labels: string,
  results: string,
  work: string,
  rels: string[],
  binariseAt?: number,
): ScoreResult {
  const view = mkdtempSync(join(work, 'view-'));
  // Rows at or above a fixed threshold after the probationary period, counted here: on binarised
  // scores the scorer may still pick "no detections" (threshold null), which would hide them.
  let detections = 0;
  try {
    for (const rel of rels) {
      const text = readFileSync(join(results, rel), 'utf8');
      if (binariseAt !== undefined) {
        const col = column(text);
        const skip = Math.min(Math.floor(0.15 * col.length), 750);
        for (let i = skip; i < col.length; i++) if (col[i] >= binariseAt) detections++;
      }
      writeResults(
        join(view, rel),
        parseNabCsv(text, rel),
        binariseAt === undefined ? column(text) : column(text).map((x) => (x >= binariseAt ? 1 : 0)),
      );
    }
    const out = execFileSync(
      process.execPath,
      [scorer, '--data', data, '--labels', labels, '--results', view, '--profile', 'standard', '--json'],
      {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      },
    );
    const p = (JSON.parse(out) as { profiles: { standard: ScorerProfile } }).profiles.standard;
    const declined = binariseAt !== undefined && p.threshold === null && detections > 0;
    if (declined && p.totals.windowsDetected + p.totals.windowsMissed > 0) {
      // The fixed threshold scores below the null detector here; the scorer cannot say by how much.
      process.stdout.write(`# note: at the fixed threshold ${binariseAt} these files score below 0\n`);
    }
    return {
      score: Number.isFinite(p.normalizedScore) ? p.normalizedScore : null,
      threshold: p.threshold,
      // Files without windows: every detection after the probationary period is a false positive.
      fp: declined ? detections : p.totals.fp,
      windowsDetected: p.totals.windowsDetected,
      windows: p.totals.windowsDetected + p.totals.windowsMissed,
    };
  } finally {
    rmSync(view, { recursive: true, force: true });
  }
}

interface ScorerProfile {
  normalizedScore: number | null;
  threshold: number | null;
  totals: { fp: number; windowsDetected: number; windowsMissed: number };
}

/** The anomaly_score column of a results CSV written by formatNabResults. */
function column(text: string): number[] {
  const out: number[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === '') continue;
    out.push(Number(lines[i].slice(lines[i].lastIndexOf(',') + 1)));
  }
  return out;
}

/** `*.csv` paths under `dir`, relative to it, sorted. */
function listCsv(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? join(prefix, name) : name;
    if (statSync(join(dir, rel)).isDirectory()) out.push(...listCsv(dir, rel));
    else if (name.endsWith('.csv')) out.push(rel);
  }
  return out;
}

/** Mean of the non-null entries, null when there are none. */
function mean(xs: Array<number | null>): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function argmax(xs: number[]): number {
  let k = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[k]) k = i;
  return k;
}

function fmt(x: number | null, digits = 2): string {
  return x === null ? 'n/a' : x.toFixed(digits);
}
