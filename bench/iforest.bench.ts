/**
 * Isolation Forest benchmark, following the contract of /work/shared/tools/iforest/compare.sh:
 *
 *   node dist/bench/index.js iforest --csv FILE [--label label] [--seed 0] [--trees 100] [--samples 256]
 *
 * Fits on all rows, scores all rows, single thread. Prints a few `#` context lines, then as the
 * last line one JSON object: {"auc","fit_ms","score_ms","rows","fit_cpu_ms","score_cpu_ms"}.
 * Times exclude CSV parsing; AUC is of −scoreSamples (higher = more anomalous) against the label.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { IsolationForest } from '../src/modules/detection/core/isolation-forest';
import { matrix } from '../src/modules/detection/core/matrix';
import { rocAuc } from '../src/modules/detection/core/stats';
import { readLabelledCsv } from './csv';

/** Entry point used by bench/index.ts. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      csv: { type: 'string' },
      label: { type: 'string', default: 'label' },
      seed: { type: 'string', default: '0' },
      trees: { type: 'string', default: '100' },
      samples: { type: 'string', default: '256' },
    },
    strict: true,
  });
  if (values.csv === undefined) throw new Error('--csv FILE is required');
  const seed = toInt(values.seed, '--seed');
  const nEstimators = toInt(values.trees, '--trees');
  const maxSamples = toInt(values.samples, '--samples');

  const ds = readLabelledCsv(values.csv, values.label);
  const X = matrix(ds.data, ds.rows, ds.cols);
  const labels = new Uint8Array(ds.rows);
  for (let i = 0; i < ds.rows; i++) labels[i] = ds.labels[i] !== 0 ? 1 : 0;

  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const model = IsolationForest.fit(X, { nEstimators, maxSamples, seed });
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage();
  const scores = model.scoreSamples(X);
  const t2 = process.hrtime.bigint();
  const c2 = process.cpuUsage();

  for (let i = 0; i < scores.length; i++) scores[i] = -scores[i];
  const auc = rocAuc(scores, labels);
  const cpuMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => (b.user - a.user + b.system - a.system) / 1e3;

  const cpu = cpus()[0]?.model ?? 'unknown';
  process.stdout.write(
    `# node ${process.version}, ${cpu}, ${cpus().length} cpus; ${ds.rows} rows x ${ds.cols} features, ` +
      `trees=${nEstimators} samples=${model.maxSamples} height=${model.heightLimit} seed=${seed}\n`,
  );
  process.stdout.write(
    JSON.stringify({
      auc,
      fit_ms: Number(t1 - t0) / 1e6,
      score_ms: Number(t2 - t1) / 1e6,
      rows: ds.rows,
      fit_cpu_ms: cpuMs(c0, c1),
      score_cpu_ms: cpuMs(c1, c2),
    }) + '\n',
  );
}

function toInt(s: string, flag: string): number {
  const v = Number(s);
  if (!Number.isSafeInteger(v)) throw new Error(`${flag} must be an integer, got ${s}`);
  return v;
}
