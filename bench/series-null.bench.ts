/**
 * Calibration check of the series detector on series without anomalies: how often does it
 * report a point above a given surprise, per 1000 points, on series of different kinds?
 *
 *   node dist/bench/index.js series-null [--seeds 3]
 *
 * A score is calibrated across series when one threshold gives about the same false-alarm rate
 * on every kind of normal behaviour: then a threshold chosen on some series (or some NAB
 * categories) means the same on others. Here nothing is an anomaly, so every report is a false
 * alarm. The kinds stand for behaviours NAB's real categories have and the development subset
 * lacks (no NAB data is used): Gaussian and autocorrelated noise, a random walk, a trend,
 * long Poisson and log-normal counts with daily and weekly cycles (5-minute tweet-like volumes),
 * a short hourly series with a daily cycle, irregular sampling with gaps, a clean daily sine.
 * Each kind is generated with `--seeds` seeds (core/rng.ts), fed through a fresh detector with
 * the NAB replay options, and scored after NAB's probationary period (the first 15 %, at most
 * 750 points), as the NAB scorer would. Prints a table, then one JSON line.
 */
import { parseArgs } from 'node:util';
import { gaussian, poisson, Rng } from '../src/modules/detection/core/rng';
import { NAB_DETECTOR_OPTIONS } from '../src/modules/detection/series/nab-replay';
import { SeriesDetector } from '../src/modules/detection/series/series-detector';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A Monday, 00:00 UTC. */
const T0 = Date.UTC(2015, 0, 5);
/** Surprise levels counted; 1.3 ≈ likelihood 0.95, about where NAB's standard profile puts its threshold. */
const LEVELS = [1.3, 2, 3] as const;

/** A kind of normal series: length, interval, and a generator of values given the time. */
interface Kind {
  readonly name: string;
  readonly points: number;
  readonly intervalMs: number;
  /** Probability that a step skips 1–20 intervals (a gap in the feed). */
  readonly gapRate?: number;
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
];

/** Entry point used by bench/index.ts. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { seeds: { type: 'string', default: '3' } }, strict: true });
  const seeds = Number(values.seeds);
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new Error(`--seeds must be a positive integer, got ${values.seeds}`);
  const rows = KINDS.map((kind) => {
    const counts = LEVELS.map(() => 0);
    let scored = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const rng = new Rng(seed);
      const gen = kind.make(rng);
      const d = new SeriesDetector(NAB_DETECTOR_OPTIONS);
      const probation = Math.min(750, Math.floor(0.15 * kind.points));
      let t = T0;
      for (let i = 0; i < kind.points; i++) {
        const skip = kind.gapRate !== undefined && rng.nextDouble() < kind.gapRate ? 1 + rng.nextInt(20) : 1;
        t += skip * kind.intervalMs;
        const r = d.update(t, gen(t));
        if (i < probation) continue;
        scored++;
        LEVELS.forEach((level, j) => {
          if (r.surprise >= level) counts[j]++;
        });
      }
    }
    return { kind: kind.name, scored, perThousand: counts.map((c) => (1000 * c) / scored) };
  });
  const width = Math.max(...rows.map((r) => r.kind.length));
  process.stdout.write(`# reports per 1000 points, surprise at least: ${LEVELS.join(' / ')} (${seeds} seeds)\n`);
  for (const r of rows) {
    process.stdout.write(`# ${r.kind.padEnd(width)}  ${r.perThousand.map((x) => x.toFixed(2).padStart(5)).join('  ')}\n`);
  }
  process.stdout.write(JSON.stringify({ seeds, levels: LEVELS, kinds: rows }) + '\n');
}
