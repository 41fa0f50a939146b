/**
 * Isolation Forest scoring kernels: the cost per row of walking 1, 4 or 8 rows side by side down
 * each tree (`IsolationForest.pathSumsWithWidth`), at the batch sizes the service scores (a single
 * event, one service's share of an ingest batch, a whole batch), after warm-up. It checks that the
 * three widths give bit-identical sums, and prints which width is cheapest at each size: what the
 * DENSE_WIDTH_*_MIN_ROWS thresholds of `src/modules/detection/core/isolation-forest.ts` are set from.
 *
 *   npm run bench -- iforest-kernels [--trees 100] [--samples 256] [--cols 6] [--sizes 1,3,4,8,16,170,1000,2048]
 *                                    [--rows-per-size 200000]
 *
 * Prints the machine, a table, and one JSON line.
 */
import { cpus, loadavg } from 'os';
import { parseArgs } from 'util';
import { IsolationForest } from '../src/modules/detection/core/isolation-forest';

const WIDTHS = [1, 4, 8] as const;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      trees: { type: 'string', default: '100' },
      samples: { type: 'string', default: '256' },
      cols: { type: 'string', default: '6' },
      sizes: { type: 'string', default: '1,3,4,8,16,170,1000,2048' },
      'rows-per-size': { type: 'string', default: '200000' },
    },
  });
  const cols = Number(values.cols);
  const sizes = values.sizes!.split(',').map(Number);
  const budget = Number(values['rows-per-size']);
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const train = Array.from({ length: 4096 }, () => Array.from({ length: cols }, () => rnd() * 10));
  const forest = IsolationForest.fit(train, { seed: 3, nEstimators: Number(values.trees), maxSamples: Number(values.samples) });

  const rows: { size: number; usPerRow: Record<string, number>; best: number; identical: boolean }[] = [];
  for (const size of sizes) {
    const m = { rows: size, cols, data: new Float64Array(size * cols).map(() => rnd() * 10) };
    const usPerRow: Record<string, number> = {};
    const sums = WIDTHS.map((w) => Array.from(forest.pathSumsWithWidth(m, w)));
    for (const w of WIDTHS) {
      const reps = Math.max(1, Math.ceil(budget / size));
      for (let i = 0; i < Math.min(reps, 2000); i++) forest.pathSumsWithWidth(m, w); // warm-up: optimised code
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) forest.pathSumsWithWidth(m, w);
      usPerRow[`width${w}`] = Math.round((Number(process.hrtime.bigint() - t0) / 1e3 / (reps * size)) * 1000) / 1000;
    }
    const best = WIDTHS.reduce((a, w) => (usPerRow[`width${w}`] < usPerRow[`width${a}`] ? w : a), WIDTHS[0] as number);
    const identical = sums.every((s) => s.every((v, i) => v === sums[0][i]));
    rows.push({ size, usPerRow, best, identical });
  }
  const machine = { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) };
  process.stdout.write(`machine: ${JSON.stringify(machine)}\n`);
  process.stdout.write(`trees ${values.trees}, samples ${values.samples}, cols ${cols}; µs per row\n`);
  process.stdout.write(`${'rows'.padStart(6)} ${WIDTHS.map((w) => `width ${w}`.padStart(9)).join(' ')}  best  identical\n`);
  for (const r of rows) {
    process.stdout.write(`${String(r.size).padStart(6)} ${WIDTHS.map((w) => r.usPerRow[`width${w}`].toFixed(3).padStart(9)).join(' ')}  ${String(r.best).padStart(4)}  ${r.identical}\n`);
  }
  process.stdout.write(JSON.stringify({ bench: 'iforest-kernels', machine, trees: Number(values.trees), samples: Number(values.samples), cols, sizes: rows }) + '\n');
  if (rows.some((r) => !r.identical)) process.exitCode = 1;
}
