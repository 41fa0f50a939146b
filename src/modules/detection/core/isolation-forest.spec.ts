import {
  averagePathLength,
  IsolationForest,
  IsolationForestError,
  IsolationForestJson,
  Matrix,
} from './isolation-forest';
import { Rng } from './rng';

/** Standard normal rows (Box–Muller), seeded so every run sees the same data. */
function gaussian(rows: number, cols: number, seed: number): Matrix {
  const rng = new Rng(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    const u = 1 - rng.nextDouble();
    data[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
  }
  return { data, rows, cols };
}

function toRows(m: Matrix): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < m.rows; r++) out.push(Array.from(m.data.subarray(r * m.cols, (r + 1) * m.cols)));
  return out;
}

function withRow(m: Matrix, row: number[]): Matrix {
  const data = new Float64Array((m.rows + 1) * m.cols);
  data.set(m.data);
  data.set(row, m.rows * m.cols);
  return { data, rows: m.rows + 1, cols: m.cols };
}

function decodeInt32(b64: string): Int32Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Int32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt32LE(i * 4);
  return out;
}

function encode(values: number[], kind: 'int32' | 'float64'): string {
  const width = kind === 'int32' ? 4 : 8;
  const buf = Buffer.alloc(values.length * width);
  values.forEach((v, i) => (kind === 'int32' ? buf.writeInt32LE(v, i * 4) : buf.writeDoubleLE(v, i * 8)));
  return buf.toString('base64');
}

/** A serialised one-tree model on one feature: root split at `threshold`, two leaves. */
function craftedStump(o: {
  maxSamples: number;
  threshold: number;
  leftSamples: number;
  rightSamples: number;
}): IsolationForestJson {
  return {
    format: 'iforest',
    version: 1,
    nFeatures: 1,
    nEstimators: 1,
    maxSamples: o.maxSamples,
    maxFeatures: 1,
    heightLimit: Math.ceil(Math.log2(o.maxSamples)),
    contamination: 'auto',
    offset: -0.5,
    seed: 0,
    trees: {
      nodeCounts: encode([3], 'int32'),
      feature: encode([0, -1, -1], 'int32'),
      threshold: encode([o.threshold], 'float64'),
      leafSamples: encode([o.leftSamples, o.rightSamples], 'int32'),
    },
  };
}

describe(IsolationForest.name, () => {
  const X = gaussian(1000, 4, 1);

  describe('averagePathLength', () => {
    it('should match sklearn _average_path_length at known points', () => {
      expect(averagePathLength(0)).toBe(0);
      expect(averagePathLength(1)).toBe(0);
      expect(averagePathLength(2)).toBe(1);
      // 2 (ln 2 + γ) − 4/3
      expect(averagePathLength(3)).toBeCloseTo(1.2073925, 6);
      expect(averagePathLength(256)).toBeCloseTo(10.2448, 4);
      expect(averagePathLength(100000)).toBeCloseTo(2 * (Math.log(99999) + 0.5772156649) - 2 * (99999 / 100000), 9);
    });
  });

  describe('fit', () => {
    it('should give bit-identical scores for the same seed', () => {
      const a = IsolationForest.fit(X, { seed: 42 }).scoreSamples(X);
      const sut = IsolationForest.fit(X, { seed: 42 });
      expect(Buffer.from(sut.scoreSamples(X).buffer)).toEqual(Buffer.from(a.buffer));
    });

    it('should give different scores for a different seed', () => {
      const a = IsolationForest.fit(X, { seed: 1 }).scoreSamples(X);
      const sut = IsolationForest.fit(X, { seed: 2 });
      const b = sut.scoreSamples(X);
      let differing = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
      expect(differing).toBeGreaterThan(a.length * 0.9);
    });

    it('should record the resolved parameters', () => {
      const sut = IsolationForest.fit(X, { seed: 3 });
      expect(sut).toMatchObject({
        nFeatures: 4,
        nEstimators: 100,
        maxSamples: 256,
        maxFeatures: 4,
        heightLimit: 8,
        contamination: 'auto',
        offset: -0.5,
        seed: 3,
      });
    });

    it.each([
      ['auto', 1000, 256, 8],
      ['auto', 100, 100, 7],
      [0.5, 1000, 500, 9],
      [1, 300, 300, 9],
      [64, 1000, 64, 6],
      [5000, 1000, 1000, 10],
      [2, 1000, 2, 1],
    ] as const)(
      'should resolve maxSamples %p on %p rows to %p with height limit %p',
      (maxSamples, rows, expected, height) => {
        const sut = IsolationForest.fit(gaussian(rows, 3, 5), { maxSamples, seed: 1, nEstimators: 5 });
        expect(sut.maxSamples).toBe(expected);
        expect(sut.heightLimit).toBe(height);
      },
    );

    it('should keep every path within the height limit plus c(leaf size)', () => {
      const sut = IsolationForest.fit(X, { maxSamples: 64, seed: 4 });
      const h = sut.pathLengths(X);
      // A leaf at the limit (depth 6) holds at most 64 rows; deeper paths are impossible.
      for (let i = 0; i < h.length; i++) expect(h[i]).toBeLessThanOrEqual(6 + averagePathLength(64));
      expect(Math.min(...h)).toBeGreaterThan(0);
    });

    it('should draw maxFeatures columns per tree', () => {
      const sut = IsolationForest.fit(X, { maxFeatures: 0.25, seed: 9, nEstimators: 40 });
      expect(sut.maxFeatures).toBe(1);
      const json = sut.toJSON();
      const counts = decodeInt32(json.trees.nodeCounts);
      const feature = decodeInt32(json.trees.feature);
      const used = new Set<number>();
      let pos = 0;
      for (const count of counts) {
        const inTree = new Set(Array.from(feature.subarray(pos, pos + count)).filter((f) => f >= 0));
        expect(inTree.size).toBe(1);
        used.add([...inTree][0]);
        pos += count;
      }
      // Across 40 trees every one of the 4 columns gets drawn.
      expect(used.size).toBe(4);
    });

    it('should set the offset at the contamination percentile of the training scores', () => {
      const sut = IsolationForest.fit(X, { contamination: 0.1, seed: 5 });
      const scores = Float64Array.from(sut.scoreSamples(X)).sort();
      // np.percentile(scores, 10) with linear interpolation, n = 1000: position 99.9.
      expect(sut.offset).toBeCloseTo(scores[99] + 0.9 * (scores[100] - scores[99]), 12);
      const d = sut.decisionFunction(X);
      const flagged = d.filter((v) => v < 0).length;
      expect(flagged).toBe(100);
    });

    it('should treat every row as isolated-by-nothing when all rows are identical', () => {
      const same: number[][] = Array.from({ length: 50 }, () => [1, 2, 3]);
      const sut = IsolationForest.fit(same, { seed: 1 });
      // Every tree is one leaf holding all 50 rows: path c(50) = normaliser, score −2^−1.
      for (const s of sut.scoreSamples(same)) expect(s).toBeCloseTo(-0.5, 12);
      expect(sut.pathLengths([[9, 9, 9]])[0]).toBeCloseTo(averagePathLength(50), 12);
    });

    it.each([
      [[], /empty/],
      [{ data: new Float64Array(0), rows: 0, cols: 3 }, /empty/],
      [[[1, 2], [3]], /row 1 has 1 values, expected 2/],
      [
        [
          [1, 2],
          [3, NaN],
        ],
        /NaN at row 1, column 1/,
      ],
      [
        [
          [1, Infinity],
          [3, 4],
        ],
        /Infinity at row 0, column 1/,
      ],
      [{ data: new Float64Array(5), rows: 2, cols: 3 }, /5 values but shape 2x3/],
    ])('should reject bad training data %#', (bad, message) => {
      expect(() => IsolationForest.fit(bad as Matrix, { seed: 1 })).toThrow(IsolationForestError);
      expect(() => IsolationForest.fit(bad as Matrix, { seed: 1 })).toThrow(message);
    });

    it.each([
      [{ nEstimators: 0 }, /nEstimators/],
      [{ nEstimators: 2.5 }, /nEstimators/],
      [{ maxSamples: 0 }, /maxSamples/],
      [{ maxSamples: 1.5 }, /maxSamples/],
      [{ maxSamples: -3 }, /maxSamples/],
      [{ maxFeatures: 5 }, /maxFeatures/],
      [{ maxFeatures: 0 }, /maxFeatures/],
      [{ contamination: 0.6 }, /contamination/],
      [{ contamination: 0 }, /contamination/],
      [{ seed: 1.5 }, /seed/],
    ])('should reject bad options %p', (options, message) => {
      expect(() => IsolationForest.fit(X, options)).toThrow(IsolationForestError);
      expect(() => IsolationForest.fit(X, options)).toThrow(message);
    });
  });

  describe('scoreSamples', () => {
    const sut = IsolationForest.fit(X, { seed: 7 });

    it('should score an obvious outlier below every inlier', () => {
      const outlier = [8, -8, 8, -8];
      const scores = sut.scoreSamples(withRow(X, outlier));
      const outlierScore = scores[X.rows];
      expect(outlierScore).toBeLessThan(-0.6);
      expect(outlierScore).toBeLessThan(Math.min(...scores.subarray(0, X.rows)));
    });

    it('should keep scores in [-1, 0)', () => {
      for (const s of sut.scoreSamples(X)) {
        expect(s).toBeGreaterThanOrEqual(-1);
        expect(s).toBeLessThan(0);
      }
    });

    it('should equal -2^(-E[h]/c(maxSamples))', () => {
      const h = sut.pathLengths(X);
      const s = sut.scoreSamples(X);
      for (let i = 0; i < 20; i++) expect(s[i]).toBeCloseTo(-Math.pow(2, -h[i] / averagePathLength(256)), 12);
    });

    it('should give the same scores for a Matrix and for number[][]', () => {
      expect(sut.scoreSamples(toRows(X))).toEqual(sut.scoreSamples(X));
    });

    it('should score each row independently of the others in the batch', () => {
      const all = sut.scoreSamples(X);
      const some = sut.scoreSamples(toRows(X).slice(13, 30));
      expect(Array.from(some)).toEqual(Array.from(all.subarray(13, 30)));
    });

    it.each([5003, 40005])('should give batch-size independent scores for %p rows', (rows) => {
      // Small, medium and large batches take different scoring kernels; remainders included.
      const big = gaussian(rows, 4, 77);
      const all = sut.scoreSamples(big);
      const rowsArray = toRows(big);
      for (const start of [0, 1234, rows - 7]) {
        const part = sut.scoreSamples(rowsArray.slice(start, start + 7));
        expect(Array.from(part)).toEqual(Array.from(all.subarray(start, start + 7)));
      }
    });

    it('should give bit-identical path sums whichever number of rows walks side by side', () => {
      const x = gaussian(1000, 4, 78);
      const rowsArray = toRows(x);
      for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1000]) {
        const part = rowsArray.slice(0, n);
        const one = Array.from(sut.pathSumsWithWidth(part, 1));
        expect(Array.from(sut.pathSumsWithWidth(part, 4))).toEqual(one);
        expect(Array.from(sut.pathSumsWithWidth(part, 8))).toEqual(one);
        // And the width the batch size picks scores each row as it scores the row alone.
        expect(Array.from(sut.scoreSamples(part))).toEqual(part.map((r) => sut.scoreSamples([r])[0]));
      }
    });

    it.each([1, 7, 8, 13, 100])('should walk %p trees side by side for one row and sum them as tree by tree', (nEstimators) => {
      // Fewer than 4 rows take the kernel that walks 8 trees at once (the rest one by one); the
      // 4-row kernel, given fewer rows, walks them one tree at a time: both add in tree order.
      const x = gaussian(300, 5, 79);
      const forest = IsolationForest.fit(x, { seed: 5, nEstimators });
      const rowsArray = toRows(x);
      for (const n of [1, 2, 3]) {
        const part = rowsArray.slice(10 * n, 10 * n + n);
        expect(Array.from(forest.pathSumsWithWidth(part, 1))).toEqual(Array.from(forest.pathSumsWithWidth(part, 4)));
      }
    });

    it.each([
      [3, 10],
      [3, 5000],
      [3, 40000],
      [2048, 10], // height 11: the pre-order (sparse) layout
    ])('should send x equal to the threshold left (maxSamples %p, %p rows)', (maxSamples, rows) => {
      // One split x0 <= 0.5: left leaf holds 1 training row (path 1), right leaf the rest.
      const sut = IsolationForest.fromJSON(
        craftedStump({ maxSamples, threshold: 0.5, leftSamples: 1, rightSamples: maxSamples - 1 }),
      );
      const data = new Float64Array(rows);
      for (let i = 0; i < rows; i++) data[i] = i % 3 === 0 ? 0.5 : i % 3 === 1 ? 0.4 : 0.6;
      const h = sut.pathLengths({ data, rows, cols: 1 });
      const right = 1 + averagePathLength(maxSamples - 1);
      for (let i = 0; i < rows; i++) expect(h[i]).toBe(i % 3 === 2 ? right : 1);
    });

    it('should return an empty result for no rows', () => {
      expect(sut.scoreSamples([]).length).toBe(0);
    });

    it('should reject a row of the wrong width', () => {
      expect(() => sut.scoreSamples([[1, 2, 3]])).toThrow(IsolationForestError);
      expect(() => sut.scoreSamples([[1, 2, 3]])).toThrow(/3 columns but the model was fitted on 4/);
    });

    it('should reject NaN naming the row and column', () => {
      expect(() =>
        sut.scoreSamples([
          [0, 0, 0, 0],
          [0, 0, NaN, 0],
        ]),
      ).toThrow(/NaN at row 1, column 2/);
    });
  });

  describe('decisionFunction', () => {
    it('should subtract the offset from the score', () => {
      const sut = IsolationForest.fit(X, { seed: 8, contamination: 0.05 });
      const s = sut.scoreSamples(X);
      const d = sut.decisionFunction(X);
      for (let i = 0; i < s.length; i++) expect(d[i]).toBe(s[i] - sut.offset);
    });
  });

  describe('predict', () => {
    it('should mark rows with a negative decision as -1 and the rest as 1', () => {
      const sut = IsolationForest.fit(X, { seed: 8, contamination: 0.05 });
      const d = sut.decisionFunction(X);
      const p = sut.predict(X);
      expect(p).toBeInstanceOf(Int8Array);
      for (let i = 0; i < d.length; i++) expect(p[i]).toBe(d[i] < 0 ? -1 : 1);
      expect(p.filter((v) => v === -1).length).toBe(50);
    });

    it('should flag an extreme row with the default offset', () => {
      const sut = IsolationForest.fit(X, { seed: 8 });
      expect(
        Array.from(
          sut.predict([
            [0, 0, 0, 0],
            [20, 20, -20, 20],
          ]),
        ),
      ).toEqual([1, -1]);
    });
  });

  describe('toJSON', () => {
    it('should produce a versioned JSON-safe object', () => {
      const sut = IsolationForest.fit(X, { seed: 10, nEstimators: 3 });
      const json = sut.toJSON();
      expect(json).toMatchObject({ format: 'iforest', version: 1, nFeatures: 4, nEstimators: 3 });
      expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    });
  });

  describe('fromJSON', () => {
    const model = IsolationForest.fit(X, { seed: 11, contamination: 0.07 });
    const json = JSON.parse(JSON.stringify(model)) as IsolationForestJson;

    it('should load a model that scores bit-identically', () => {
      const sut = IsolationForest.fromJSON(json);
      const probe = gaussian(500, 4, 99);
      expect(Buffer.from(sut.scoreSamples(probe).buffer)).toEqual(Buffer.from(model.scoreSamples(probe).buffer));
      expect(sut.offset).toBe(model.offset);
      expect(Array.from(sut.predict(probe))).toEqual(Array.from(model.predict(probe)));
      expect(Array.from(sut.featureContributions([3, 0, 0, 0]))).toEqual(
        Array.from(model.featureContributions([3, 0, 0, 0])),
      );
      expect(sut.toJSON()).toEqual(json);
    });

    it('should load tall trees (sparse scoring layout) bit-identically', () => {
      const big = gaussian(3000, 2, 12);
      const tall = IsolationForest.fit(big, { seed: 3, maxSamples: 3000, nEstimators: 10 });
      expect(tall.heightLimit).toBe(12);
      const sut = IsolationForest.fromJSON(JSON.parse(JSON.stringify(tall)));
      expect(Buffer.from(sut.scoreSamples(big).buffer)).toEqual(Buffer.from(tall.scoreSamples(big).buffer));
    });

    it.each([
      ['a wrong format', { format: 'other' }, /format/],
      ['a newer version', { version: 2 }, /version 2/],
      [
        'a truncated feature array',
        { trees: { ...json.trees, feature: json.trees.feature.slice(0, 16) } },
        /malformed|add up/,
      ],
      ['a missing leaf count', { trees: { ...json.trees, leafSamples: json.trees.leafSamples.slice(0, -8) } }, /leaf/],
      ['an unknown feature', { corruptFeature: true }, /feature 7 >= nFeatures 4/],
      ['a bad heightLimit', { heightLimit: 5 }, /heightLimit/],
      ['non-base64 arrays', { trees: { ...json.trees, threshold: '***' } }, /base64/],
      ['a wrong tree count', { nEstimators: 99 }, /node counts/],
    ])('should reject %s', (_name, patch, message) => {
      const bad = { ...json, ...patch } as Record<string, unknown>;
      if ('corruptFeature' in patch) {
        const feature = decodeInt32(json.trees.feature);
        feature[0] = 7; // root split on a column the model does not have
        const buf = Buffer.alloc(feature.length * 4);
        feature.forEach((f, i) => buf.writeInt32LE(f, i * 4));
        bad.trees = { ...json.trees, feature: buf.toString('base64') };
      }
      expect(() => IsolationForest.fromJSON(bad)).toThrow(IsolationForestError);
      expect(() => IsolationForest.fromJSON(bad)).toThrow(message);
    });

    it('should reject a non-object', () => {
      expect(() => IsolationForest.fromJSON('nope')).toThrow(IsolationForestError);
    });
  });

  describe('featureContributions', () => {
    const sut = IsolationForest.fit(X, { seed: 13 });

    it.each([0, 1, 2, 3])('should credit feature %p most for a row anomalous only in it', (j) => {
      const row = [0.1, -0.2, 0.05, 0.3];
      row[j] = j % 2 === 0 ? 6 : -6;
      const c = sut.featureContributions(row);
      const best = c.indexOf(Math.max(...c));
      expect(best).toBe(j);
      expect(c[j]).toBeGreaterThan(1);
    });

    it('should sum to the path shortening c(maxSamples) - E[h(x)]', () => {
      for (const row of [
        [0, 0, 0, 0],
        [5, 0, -5, 0],
        [0.5, 1, -1, 2],
      ]) {
        const c = sut.featureContributions(row);
        const sum = c.reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo(averagePathLength(256) - sut.pathLengths([row])[0], 9);
      }
    });

    it('should normalise positive credits to sum to 1 when asked', () => {
      const c = sut.featureContributions([0, 7, 0, 0], { normalize: true });
      expect(c.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      for (const v of c) expect(v).toBeGreaterThanOrEqual(0);
      expect(c[1]).toBeGreaterThan(0.5);
    });

    it('should reject a row of the wrong length', () => {
      expect(() => sut.featureContributions([1, 2])).toThrow(/row has 2 columns/);
    });
  });
});
