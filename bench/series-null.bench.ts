/**
 * Calibration check of the series detector on series without anomalies: how often does it
 * report a point above a given surprise, per 1000 points, on series of different kinds?
 *
 *   node dist/bench/index.js series-null [--seeds 5 | --seeds 6..10] [--levels 1.3,2,3]
 *                                        [--reference DIST --reference-levels 1.3,2,3]
 *
 * A score is calibrated across series when one threshold gives about the same false-alarm rate
 * on every kind of normal behaviour: then a threshold chosen on some series (or some NAB
 * categories) means the same on others. Here nothing is an anomaly, so every report is a false
 * alarm. The kinds stand for behaviours NAB's real categories have and the development subset
 * lacks (no NAB data is used): Gaussian and autocorrelated noise, a random walk, a trend,
 * long Poisson and log-normal counts with daily and weekly cycles (5-minute tweet-like volumes,
 * also with short bursts), short and long hourly series with a daily cycle (ad-exchange-like),
 * the same log-normal series at 5 minutes (only the sampling period differs from the hourly
 * one), irregular sampling (gaps; jittered timestamps with a process that decorrelates in
 * time), a clean daily sine, and a short series of 1000 points (under four days: the detector
 * is still learning its daily cycle when NAB's probationary period ends).
 * Each kind is generated with seeds 1..N (`--seeds N`) or A..B (`--seeds A..B`) (core/rng.ts),
 * fed through a fresh detector with the NAB replay options, and scored after NAB's probationary
 * period (the first 15 %, at most 750 points), as the NAB scorer would.
 *
 * `--levels` are the surprises counted (−log10(1 − likelihood)); the one that matters is where
 * the NAB scorer puts its standard threshold for that build (1.30 for builds up to issue 14's
 * third session, 2.35 since: the likelihood scale moved, see docs/benchmarks.md). `--reference`
 * runs another build's compiled detector (`DIST/src/modules/detection/series/series-detector.js`)
 * on the same series in the same run, counted at `--reference-levels`. Prints a table (reports
 * per 1000 points per kind, then per level the mean over kinds and the ratio of the highest to
 * the lowest kind), then one JSON line.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gaussian, poisson, Rng } from '../src/modules/detection/core/rng';
import { NAB_DETECTOR_OPTIONS } from '../src/modules/detection/series/nab-replay';
import { SeriesDetector } from '../src/modules/detection/series/series-detector';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A Monday, 00:00 UTC. */
const T0 = Date.UTC(2015, 0, 5);
/** Surprise levels counted by default; 1.3 ≈ likelihood 0.95, 2.35 ≈ 0.9956 (NAB's standard threshold before and after issue 14's third session). */
const DEFAULT_LEVELS = '1.3,2,2.35,3';

/** A kind of normal series: length, interval, and a generator of values given the time. */
interface Kind {
  readonly name: string;
  readonly points: number;
  readonly intervalMs: number;
  /** Probability that a step skips 1–20 intervals (a gap in the feed). */
  readonly gapRate?: number;
  /** Each step lasts 0.6–1.4 times its nominal length (rounded to the second): irregular sampling. */
  readonly jitter?: boolean;
  readonly make: (rng: Rng) => (t: number) => number;
}

const daily = (t: number): number => Math.sin((2 * Math.PI * (t % DAY)) / DAY);
const weekly = (t: number): number => (Math.floor((t - T0) / DAY) % 7 >= 5 ? 0.6 : 1);

const KINDS: readonly Kind[] = [
  { name: 'white noise', points: 4000, intervalMs: 5 * MINUTE, make: (r) => () => 10 + gaussian(r) },
  {
    name: 'AR(1) 0.9',
    points: 4000,
    intervalMs: 5 * MINUTE,
    make: (r) => {
      let x = 0;
      return () => (x = 0.9 * x + gaussian(r));
    },
  },
  {
    name: 'random walk + noise',
    points: 4000,
    intervalMs: 5 * MINUTE,
    make: (r) => {
      let x = 0;
      return () => (x += 0.1 * gaussian(r)) + gaussian(r);
    },
  },
  {
    name: 'trend + noise',
    points: 4000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => 10 + (0.5 * (t - T0)) / DAY + gaussian(r),
  },
  {
    name: 'Poisson counts, mean 20, daily+weekly',
    points: 15000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => poisson(r, 20 * (1 + 0.8 * daily(t)) * weekly(t)),
  },
  {
    name: 'Poisson counts, mean 3, daily',
    points: 15000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => poisson(r, 3 * (1 + 0.8 * daily(t))),
  },
  {
    name: 'log-normal counts (σ 0.6), daily',
    points: 15000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => Math.round(20 * (1 + 0.8 * daily(t)) * Math.exp(0.6 * gaussian(r))),
  },
  {
    name: 'hourly, log-normal (σ 0.3), daily+weekly',
    points: 1600,
    intervalMs: HOUR,
    make: (r) => (t) => (1 + 0.5 * daily(t)) * weekly(t) * Math.exp(0.3 * gaussian(r)),
  },
  {
    name: 'AR(1) 0.7, irregular with gaps',
    points: 2500,
    intervalMs: 5 * MINUTE,
    gapRate: 0.05,
    make: (r) => {
      let x = 0;
      return () => 50 + (x = 0.7 * x + 3 * gaussian(r));
    },
  },
  {
    name: 'daily sine + small noise',
    points: 4000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => 50 + 20 * daily(t) + 2 * gaussian(r),
  },
  {
    name: 'hourly, log-normal (σ 0.4), daily, 2500 points',
    points: 2500,
    intervalMs: HOUR,
    make: (r) => (t) => 0.5 * (1 + 0.6 * daily(t)) * Math.exp(0.4 * gaussian(r)),
  },
  {
    // The hourly kind above at 5 minutes: only the sampling period differs.
    name: '5-minute, log-normal (σ 0.3), daily+weekly',
    points: 4000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => (1 + 0.5 * daily(t)) * weekly(t) * Math.exp(0.3 * gaussian(r)),
  },
  {
    // About three bursts a day, 1–6 points at three times the rate: part of normal tweet volumes.
    name: 'Poisson counts, mean 10, daily, bursts',
    points: 15000,
    intervalMs: 5 * MINUTE,
    make: (r) => {
      let burst = 0;
      return (t) => {
        if (burst > 0) burst--;
        else if (r.nextDouble() < 0.01) burst = 1 + r.nextInt(6);
        return poisson(r, 10 * (1 + 0.8 * daily(t)) * (burst > 0 ? 3 : 1));
      };
    },
  },
  {
    // An Ornstein–Uhlenbeck process sampled at irregular times: after a gap the value has moved on.
    name: 'OU in time, jittered timestamps, gaps, daily',
    points: 2500,
    intervalMs: 5 * MINUTE,
    gapRate: 0.05,
    jitter: true,
    make: (r) => {
      let x = 0;
      let last = NaN;
      return (t) => {
        const steps = Number.isNaN(last) ? 1 : (t - last) / (5 * MINUTE);
        last = t;
        const a = Math.pow(0.7, steps);
        x = a * x + 4.2 * Math.sqrt(1 - a * a) * gaussian(r);
        return 50 + 10 * daily(t) + x;
      };
    },
  },
  {
    name: 'short: 1000 points at 5 min, daily sine + noise',
    points: 1000,
    intervalMs: 5 * MINUTE,
    make: (r) => (t) => 50 + 10 * daily(t) + 3 * gaussian(r),
  },
];

/** What the bench needs of a detector class, this build's or a reference one's. */
type DetectorClass = new (options: typeof NAB_DETECTOR_OPTIONS) => {
  update(t: number, v: number): { surprise: number };
};

/** Reports per 1000 scored points at each level, per kind. */
interface Row {
  readonly kind: string;
  readonly scored: number;
  readonly perThousand: number[];
}

function parseSeeds(text: string): [number, number] {
  const range = /^(\d+)\.\.(\d+)$/.exec(text);
  const [from, to] = range ? [Number(range[1]), Number(range[2])] : [1, Number(text)];
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 1 && to >= from)) {
    throw new Error(`--seeds must be N or A..B (positive integers, A ≤ B), got ${text}`);
  }
  return [from, to];
}

function parseLevels(text: string): number[] {
  const levels = text.split(',').map(Number);
  if (levels.length === 0 || !levels.every((l) => Number.isFinite(l) && l > 0)) {
    throw new Error(`levels must be positive numbers separated by commas, got ${text}`);
  }
  return levels;
}

/** Every kind with seeds from..to through a fresh `Detector`, reports counted at `levels`. */
function measure(Detector: DetectorClass, [from, to]: [number, number], levels: number[]): Row[] {
  return KINDS.map((kind) => {
    const counts = levels.map(() => 0);
    let scored = 0;
    for (let seed = from; seed <= to; seed++) {
      const rng = new Rng(seed);
      const gen = kind.make(rng);
      const d = new Detector(NAB_DETECTOR_OPTIONS);
      const probation = Math.min(750, Math.floor(0.15 * kind.points));
      let t = T0;
      for (let i = 0; i < kind.points; i++) {
        const skip = kind.gapRate !== undefined && rng.nextDouble() < kind.gapRate ? 1 + rng.nextInt(20) : 1;
        t += kind.jitter
          ? 1000 * Math.round((skip * kind.intervalMs * (0.6 + 0.8 * rng.nextDouble())) / 1000)
          : skip * kind.intervalMs;
        const r = d.update(t, gen(t));
        if (i < probation) continue;
        scored++;
        for (let j = 0; j < levels.length; j++) if (r.surprise >= levels[j]) counts[j]++;
      }
    }
    return { kind: kind.name, scored, perThousand: counts.map((c) => (1000 * c) / scored) };
  });
}

/** Per level: mean over kinds, and highest ÷ lowest kind (Infinity when a kind has none). */
function summary(rows: Row[], levels: number[]): Array<{ level: number; mean: number; maxOverMin: number }> {
  return levels.map((level, j) => {
    const v = rows.map((r) => r.perThousand[j]);
    return {
      level,
      mean: v.reduce((a, b) => a + b, 0) / v.length,
      maxOverMin: Math.max(...v) / Math.min(...v),
    };
  });
}

function loadReference(dist: string): DetectorClass {
  const mod = require(resolve(dist, 'src/modules/detection/series/series-detector.js')) as {
    SeriesDetector?: DetectorClass;
  };
  if (typeof mod.SeriesDetector !== 'function') throw new Error(`${dist}: no SeriesDetector in that build`);
  return mod.SeriesDetector;
}

/** Entry point used by bench/index.ts. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string', default: '3' },
      levels: { type: 'string', default: DEFAULT_LEVELS },
      reference: { type: 'string' },
      'reference-levels': { type: 'string' },
    },
    strict: true,
  });
  const seeds = parseSeeds(values.seeds);
  const levels = parseLevels(values.levels);
  const rows = measure(SeriesDetector, seeds, levels);
  const refLevels = parseLevels(values['reference-levels'] ?? values.levels);
  const refRows = values.reference !== undefined ? measure(loadReference(values.reference), seeds, refLevels) : null;

  const width = Math.max(...rows.map((r) => r.kind.length));
  const fmt = (v: number[]): string => v.map((x) => x.toFixed(2).padStart(6)).join(' ');
  const seedText = `seeds ${seeds[0]}..${seeds[1]}`;
  process.stdout.write(`# reports per 1000 points (${seedText}), this build at surprise ${levels.join(' / ')}`);
  process.stdout.write(refRows ? `; reference ${values.reference} at ${refLevels.join(' / ')}\n` : '\n');
  rows.forEach((r, i) => {
    const ref = refRows ? `   | ${fmt(refRows[i].perThousand)}` : '';
    process.stdout.write(`# ${r.kind.padEnd(width)} ${fmt(r.perThousand)}${ref}\n`);
  });
  const sum = summary(rows, levels);
  const refSum = refRows ? summary(refRows, refLevels) : null;
  process.stdout.write(`# ${'mean over kinds'.padEnd(width)} ${fmt(sum.map((x) => x.mean))}`);
  process.stdout.write(refSum ? `   | ${fmt(refSum.map((x) => x.mean))}\n` : '\n');
  process.stdout.write(`# ${'highest / lowest kind'.padEnd(width)} ${fmt(sum.map((x) => x.maxOverMin))}`);
  process.stdout.write(refSum ? `   | ${fmt(refSum.map((x) => x.maxOverMin))}\n` : '\n');
  process.stdout.write(
    JSON.stringify({
      seeds: { from: seeds[0], to: seeds[1] },
      levels,
      kinds: rows,
      summary: sum,
      ...(refRows
        ? { reference: values.reference, referenceLevels: refLevels, referenceKinds: refRows, referenceSummary: refSum }
        : {}),
    }) + '\n',
  );
}
