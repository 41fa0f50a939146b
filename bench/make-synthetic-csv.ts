/**
 * Write a large labelled CSV for the Isolation Forest benchmark (header f0..f{d-1},label;
 * label 1 = anomaly). Seeded, so the same arguments give the same file. Not a benchmark itself:
 *
 *   node dist/bench/make-synthetic-csv.js [--rows 1000000] [--cols 8] [--anomalies 0.015]
 *        [--seed 1] --out /tmp/iforest-synthetic-1m.csv
 *
 * Normal rows come from three correlated Gaussian clusters of different sizes and spreads
 * (features share latent factors, as request metrics do). Anomalies, in equal shares:
 * - global: uniform in a box well beyond the clusters;
 * - single-feature: a normal row with one feature pushed 5–9 sd out;
 * - correlation-breaking: a normal row whose correlated pair is decoupled, each value alone
 *   being ordinary;
 * - micro-cluster: a tight clump away from the normal clusters.
 * The file is written to the given path (keep it out of the repository).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Rng } from '../src/modules/detection/core/rng';

/** Options of {@link writeSyntheticCsv}. */
export interface SyntheticCsvOptions {
  readonly out: string;
  readonly rows: number;
  readonly cols: number;
  readonly anomalyRate: number;
  readonly seed: number;
}

/** Write the data set; returns the number of anomalous rows. */
export function writeSyntheticCsv(o: SyntheticCsvOptions): number {
  if (o.cols < 2) throw new Error('--cols must be at least 2');
  const rng = new Rng(o.seed);
  const normal = (): number => {
    const u = 1 - rng.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
  };
  const d = o.cols;
  const nFactors = 2;
  const clusters = [0, 1, 2].map((c) => ({
    weight: [0.6, 0.3, 0.1][c],
    mean: Array.from({ length: d }, () => 4 * normal()),
    scale: Array.from({ length: d }, () => 0.5 + rng.nextDouble()),
    loading: Array.from({ length: d * nFactors }, () => normal()),
  }));
  const microCentre = Array.from({ length: d }, () => 6 + 2 * rng.nextDouble());
  const row = new Float64Array(d);
  const drawNormal = (): void => {
    const u = rng.nextDouble();
    const c =
      u < clusters[0].weight ? clusters[0] : u < clusters[0].weight + clusters[1].weight ? clusters[1] : clusters[2];
    const z0 = normal();
    const z1 = normal();
    for (let j = 0; j < d; j++) {
      const shared = c.loading[j * nFactors] * z0 + c.loading[j * nFactors + 1] * z1;
      row[j] = c.mean[j] + c.scale[j] * (0.8 * shared + 0.6 * normal());
    }
  };

  const fd = openSync(o.out, 'w');
  let anomalies = 0;
  try {
    const header = Array.from({ length: d }, (_, j) => `f${j}`).join(',') + ',label\n';
    writeSync(fd, header);
    let chunk: string[] = [];
    for (let r = 0; r < o.rows; r++) {
      let label = 0;
      if (rng.nextDouble() < o.anomalyRate) {
        label = 1;
        anomalies++;
        const kind = rng.nextInt(4);
        if (kind === 0) {
          for (let j = 0; j < d; j++) row[j] = -14 + 28 * rng.nextDouble();
        } else if (kind === 1) {
          drawNormal();
          const j = rng.nextInt(d);
          row[j] += (rng.nextDouble() < 0.5 ? -1 : 1) * (5 + 4 * rng.nextDouble()) * clusters[0].scale[j] * 1.5;
        } else if (kind === 2) {
          drawNormal();
          // Swap one coordinate with another row's: marginals stay normal, the joint does not.
          const j = rng.nextInt(d);
          const keep = row[j];
          drawNormal();
          row[j] = keep;
        } else {
          for (let j = 0; j < d; j++) row[j] = microCentre[j] + 0.1 * normal();
        }
      } else {
        drawNormal();
      }
      let line = '';
      for (let j = 0; j < d; j++) line += (j ? ',' : '') + String(Number(row[j].toPrecision(7)));
      chunk.push(line + ',' + label);
      if (chunk.length === 10000) {
        writeSync(fd, chunk.join('\n') + '\n');
        chunk = [];
      }
    }
    if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  } finally {
    closeSync(fd);
  }
  return anomalies;
}

/** CLI entry point. */
export function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      rows: { type: 'string', default: '1000000' },
      cols: { type: 'string', default: '8' },
      anomalies: { type: 'string', default: '0.015' },
      seed: { type: 'string', default: '1' },
    },
    strict: true,
  });
  if (values.out === undefined) throw new Error('--out FILE is required (e.g. /tmp/iforest-synthetic-1m.csv)');
  const o: SyntheticCsvOptions = {
    out: values.out,
    rows: Number(values.rows),
    cols: Number(values.cols),
    anomalyRate: Number(values.anomalies),
    seed: Number(values.seed),
  };
  if (!Number.isInteger(o.rows) || o.rows < 1) throw new Error('--rows must be a positive integer');
  if (!Number.isInteger(o.cols)) throw new Error('--cols must be an integer');
  if (!(o.anomalyRate >= 0 && o.anomalyRate < 1)) throw new Error('--anomalies must be in [0, 1)');
  const n = writeSyntheticCsv(o);
  process.stdout.write(`wrote ${o.out}: ${o.rows} rows x ${o.cols} features, ${n} anomalies\n`);
}

if (require.main === module) main(process.argv.slice(2));
