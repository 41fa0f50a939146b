/**
 * Isolation Forest (Liu, Ting & Zhou, ICDM 2008) with scikit-learn's `IsolationForest`
 * semantics, so scores and AUCs are comparable with sklearn 1.x:
 *
 * - each tree sees `maxSamples` rows drawn without replacement and `maxFeatures` columns drawn
 *   without replacement, and is grown to the height limit ceil(log2(maxSamples));
 * - a node splits on a feature drawn uniformly among those not constant in the node, at a
 *   threshold uniform in [min, max) of that feature; `x <= threshold` goes left (sklearn's
 *   `ExtraTreeRegressor(max_features=1, splitter='random')`);
 * - path length = leaf depth + c(training samples in the leaf);
 *   `scoreSamples = −2^(−mean path length / c(maxSamples))` (higher = more normal);
 *   `decisionFunction = scoreSamples − offset` (negative = anomalous).
 *
 * The RNG differs from numpy's, so individual trees differ from sklearn's for the same seed;
 * the model is the same in distribution.
 *
 * Layout: trees are kept in pre-order in flat typed arrays (the left child of node i is i + 1,
 * only the right child is stored). For scoring, shallow trees (the usual height 8) are also
 * compiled to a complete binary tree in heap order, with leaves above the height limit
 * padded down to it: every row then takes exactly `heightLimit` steps per tree with no
 * data-dependent loop exit, which keeps the hot loop short and branch-predictor friendly.
 */
import { IsolationForestError } from './errors';
import { assertFinite, Matrix, MatrixInput, toMatrix } from './matrix';
import { Rng } from './rng';
import { quantileSorted } from './stats';

export { IsolationForestError } from './errors';
export type { Matrix, MatrixInput } from './matrix';

/** Euler–Mascheroni constant, as numpy's `np.euler_gamma`. */
const EULER_GAMMA = 0.5772156649015329;

/** Trees up to this height get the padded heap layout (2^h leaves · 100 trees stays in L2). */
const DENSE_MAX_HEIGHT = 10;

/** Uniform doubles drawn at a time for node splits during a fit. */
const RNG_POOL_SIZE = 1024;

/**
 * Batch sizes from which the dense scorer walks 4, then 8 rows side by side (scoreDenseBlock);
 * below 4 rows it walks one row through 8 trees side by side (scoreDenseRowTrees8). A walk down
 * one tree is a chain of dependent loads; several walks side by side overlap their cache misses.
 * Measured with 100 trees of height 8 and 3–40 columns (Node 20, AMD EPYC,
 * `npm run bench -- iforest-kernels`): one row through one tree at a time 5.1–5.6 µs per row at every
 * batch size, one row through 8 trees at a time 1.6–1.8, four rows side by side 1.6–2.0 µs from 4
 * rows, eight 1.2–1.6 µs from 8 rows; all give bit-identical scores (each row's per-tree path
 * lengths are added in tree order).
 */
const DENSE_WIDTH_4_MIN_ROWS = 4;
const DENSE_WIDTH_8_MIN_ROWS = 8;

/** Rows scored per block: a block's features and accumulators stay cache-resident across trees. */
const SCORE_BLOCK_ROWS = 2048;

/**
 * Average path length of an unsuccessful binary-search-tree search among `n` points, c(n), the
 * normaliser of the Isolation Forest paper. Matches sklearn's `_average_path_length`:
 * c(0) = c(1) = 0, c(2) = 1, c(n) = 2(ln(n − 1) + γ) − 2(n − 1)/n otherwise.
 */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - (2 * (n - 1)) / n;
}

/** `'auto'` = min(256, rows); a number in (0, 1] = that fraction of the rows; an integer > 1 = a count. */
export type MaxSamplesOption = 'auto' | number;

/** `'auto'` = offset −0.5 (the paper's threshold); a fraction in (0, 0.5] = expected outlier share. */
export type ContaminationOption = 'auto' | number;

/** Options of {@link IsolationForest.fit}; every field is optional. */
export interface IsolationForestOptions {
  /** Number of trees. Default 100. */
  readonly nEstimators?: number;
  /**
   * Rows drawn (without replacement) per tree. Default `'auto'` = min(256, rows). A number in
   * (0, 1] is a fraction of the rows (so `1` means all rows, unlike sklearn's int 1); an integer
   * > 1 is a count, capped at the number of rows as sklearn does.
   */
  readonly maxSamples?: MaxSamplesOption;
  /**
   * Columns drawn (without replacement) per tree, like sklearn's bagging `max_features`.
   * Default 1.0 = all. A number in (0, 1] is a fraction (at least one column); an integer > 1 is
   * a count and must not exceed the number of columns.
   */
  readonly maxFeatures?: number;
  /**
   * Sets {@link IsolationForest.offset}. `'auto'` (default) → −0.5; a fraction c in (0, 0.5] →
   * the 100·c-th percentile of the training scores, so about that share of the training rows
   * gets a negative decision function.
   */
  readonly contamination?: ContaminationOption;
  /** Seed of the RNG: the same seed and data give the same model. Default: a random seed. */
  readonly seed?: number;
}

/** Version-1 serialised model, see {@link IsolationForest.toJSON}. JSON-safe. */
export interface IsolationForestJson {
  readonly format: 'iforest';
  readonly version: 1;
  readonly nFeatures: number;
  readonly nEstimators: number;
  /** Effective rows per tree (after 'auto' / fraction / capping). */
  readonly maxSamples: number;
  /** Effective columns per tree. */
  readonly maxFeatures: number;
  readonly heightLimit: number;
  readonly contamination: ContaminationOption;
  readonly offset: number;
  readonly seed: number;
  /** Little-endian typed arrays, base64. Trees in pre-order, concatenated. */
  readonly trees: {
    /** Int32 per tree: its number of nodes. */
    readonly nodeCounts: string;
    /** Int32 per node: split column, or −1 for a leaf. */
    readonly feature: string;
    /** Float64 per internal node: split threshold (x <= threshold goes left). */
    readonly threshold: string;
    /** Int32 per leaf: training rows that reached it. */
    readonly leafSamples: string;
  };
}

/** Options of {@link IsolationForest.featureContributions}. */
export interface FeatureContributionOptions {
  /**
   * false (default): raw expected depth reductions, summing to c(maxSamples) − E[h(x)].
   * true: positive parts only, scaled to sum to 1 (all zeros when nothing shortened the path).
   */
  readonly normalize?: boolean;
}

/**
 * The serialised form of the trees: pre-order, concatenated, nothing derivable stored
 * (right children, internal sample counts, depths and leaf values are recomputed on load).
 */
interface TreeArrays {
  readonly nodeCounts: Int32Array;
  /** Split column per node; −1 marks a leaf. */
  readonly feature: Int32Array;
  /** Threshold per internal node, in pre-order (leaves have none). */
  readonly threshold: Float64Array;
  /** Training rows per leaf, in pre-order. */
  readonly leafSamples: Int32Array;
}

/**
 * In-memory trees: pre-order per-node arrays (left child of node i is i + 1) plus, for trees
 * no taller than DENSE_MAX_HEIGHT, the padded heap layout used for scoring.
 */
interface Forest {
  /** Global index of each tree's root. */
  readonly treeStart: Int32Array;
  /** Split column, −1 for a leaf. */
  readonly feature: Int32Array;
  /** Split threshold (x <= threshold goes left); 0 for leaves. */
  readonly threshold: Float64Array;
  /** Global index of the right child; meaningless for leaves. */
  readonly right: Int32Array;
  /** Training rows that reached the node. */
  readonly samples: Int32Array;
  /** Path length of a leaf: depth + c(samples); 0 for internal nodes. */
  readonly leafValue: Float64Array;
  readonly dense: DenseForest | null;
}

interface ModelParams {
  readonly nFeatures: number;
  readonly nEstimators: number;
  readonly maxSamples: number;
  readonly maxFeatures: number;
  readonly heightLimit: number;
  readonly contamination: ContaminationOption;
  readonly offset: number;
  readonly seed: number;
}

/**
 * A fitted Isolation Forest. Create one with {@link IsolationForest.fit} or
 * {@link IsolationForest.fromJSON}; it is immutable afterwards and safe to share.
 */
export class IsolationForest {
  /** Number of columns the model was fitted on; scoring input must have exactly this many. */
  readonly nFeatures: number;
  /** Number of trees. */
  readonly nEstimators: number;
  /** Effective rows per tree (ψ); scores are normalised by c(ψ). */
  readonly maxSamples: number;
  /** Effective columns per tree. */
  readonly maxFeatures: number;
  /** Tree height limit, ceil(log2(max(maxSamples, 2))). */
  readonly heightLimit: number;
  /** The contamination option the model was fitted with. */
  readonly contamination: ContaminationOption;
  /** Subtracted from {@link scoreSamples} to give {@link decisionFunction}. */
  readonly offset: number;
  /** Seed the model was grown from. */
  readonly seed: number;

  private readonly forest: Forest;

  private constructor(params: ModelParams, forest: Forest) {
    this.nFeatures = params.nFeatures;
    this.nEstimators = params.nEstimators;
    this.maxSamples = params.maxSamples;
    this.maxFeatures = params.maxFeatures;
    this.heightLimit = params.heightLimit;
    this.contamination = params.contamination;
    this.offset = params.offset;
    this.seed = params.seed;
    this.forest = forest;
  }

  /**
   * Fit a forest on `X` (rows = observations, columns = features).
   *
   * @throws IsolationForestError for an empty X, NaN/±Infinity values (naming row and column),
   *   or invalid options.
   */
  static fit(X: MatrixInput, options: IsolationForestOptions = {}): IsolationForest {
    const m = toMatrix(X, 'X', IsolationForestError);
    if (m.rows === 0 || m.cols === 0) {
      throw new IsolationForestError(
        `X is empty (${m.rows} rows, ${m.cols} columns): need at least one row and one column`,
      );
    }
    assertFinite(m, 'X', IsolationForestError);
    const o = resolveOptions(options, m.rows, m.cols);
    const forest = growForest(m, o);
    const params: ModelParams = {
      nFeatures: m.cols,
      nEstimators: o.nEstimators,
      maxSamples: o.maxSamples,
      maxFeatures: o.maxFeatures,
      heightLimit: o.heightLimit,
      contamination: o.contamination,
      offset: -0.5,
      seed: o.seed,
    };
    const model = new IsolationForest(params, forest);
    if (o.contamination === 'auto') return model;
    // Like sklearn: offset = np.percentile(score_samples(X), 100 * contamination).
    const scores = model.scoreMatrix(m).sort();
    const offset = quantileSorted(scores, o.contamination);
    return new IsolationForest({ ...params, offset }, forest);
  }

  /**
   * Rebuild a model from {@link toJSON} output (also after a JSON.stringify/parse round trip).
   * The result scores bit-identically to the model that was serialised.
   *
   * @throws IsolationForestError when the format, version or any array is not consistent.
   */
  static fromJSON(json: unknown): IsolationForest {
    if (typeof json !== 'object' || json === null) {
      throw new IsolationForestError('serialised model must be an object');
    }
    const j = json as Partial<Record<keyof IsolationForestJson, unknown>>;
    if (j.format !== 'iforest') {
      throw new IsolationForestError(`not a serialised isolation forest (format ${String(j.format)})`);
    }
    if (j.version !== 1) {
      throw new IsolationForestError(`unsupported isolation forest version ${String(j.version)}, expected 1`);
    }
    const int = (key: keyof IsolationForestJson, min: number, max: number): number => {
      const v = j[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new IsolationForestError(`serialised model: ${key} must be an integer in [${min}, ${max}]`);
      }
      return v;
    };
    const nFeatures = int('nFeatures', 1, 2 ** 31 - 1);
    const nEstimators = int('nEstimators', 1, 2 ** 31 - 1);
    const maxSamples = int('maxSamples', 1, 2 ** 31 - 1);
    const maxFeatures = int('maxFeatures', 1, nFeatures);
    const heightLimit = int('heightLimit', 0, 31);
    if (heightLimit !== heightLimitFor(maxSamples)) {
      throw new IsolationForestError(
        `serialised model: heightLimit ${heightLimit} does not match maxSamples ${maxSamples}`,
      );
    }
    const seed = j.seed;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
      throw new IsolationForestError('serialised model: seed must be a safe integer');
    }
    const contamination = j.contamination;
    if (contamination !== 'auto' && !(typeof contamination === 'number' && contamination > 0 && contamination <= 0.5)) {
      throw new IsolationForestError("serialised model: contamination must be 'auto' or in (0, 0.5]");
    }
    const offset = j.offset;
    if (typeof offset !== 'number' || !Number.isFinite(offset)) {
      throw new IsolationForestError('serialised model: offset must be a finite number');
    }
    const t = j.trees as Record<string, unknown> | null | undefined;
    if (typeof t !== 'object' || t === null) {
      throw new IsolationForestError('serialised model: trees missing');
    }
    const trees: TreeArrays = {
      nodeCounts: decodeInt32(t.nodeCounts, 'trees.nodeCounts'),
      feature: decodeInt32(t.feature, 'trees.feature'),
      threshold: decodeFloat64(t.threshold, 'trees.threshold'),
      leafSamples: decodeInt32(t.leafSamples, 'trees.leafSamples'),
    };
    if (trees.nodeCounts.length !== nEstimators) {
      throw new IsolationForestError(
        `serialised model: ${trees.nodeCounts.length} node counts for ${nEstimators} trees`,
      );
    }
    const params: ModelParams = {
      nFeatures,
      nEstimators,
      maxSamples,
      maxFeatures,
      heightLimit,
      contamination,
      offset,
      seed,
    };
    return new IsolationForest(params, linkTrees(trees, params));
  }

  /**
   * Serialise to a compact, versioned, JSON-safe object (`{format: 'iforest', version: 1, …}`)
   * with the tree arrays as little-endian base64. Restore with {@link IsolationForest.fromJSON}.
   */
  toJSON(): IsolationForestJson {
    return {
      format: 'iforest',
      version: 1,
      nFeatures: this.nFeatures,
      nEstimators: this.nEstimators,
      maxSamples: this.maxSamples,
      maxFeatures: this.maxFeatures,
      heightLimit: this.heightLimit,
      contamination: this.contamination,
      offset: this.offset,
      seed: this.seed,
      trees: packTrees(this.forest),
    };
  }

  /**
   * sklearn's `score_samples`: −2^(−E[h(x)] / c(maxSamples)) per row, in [−1, 0).
   * Higher = more normal; around −0.5 and below is anomalous.
   *
   * @throws IsolationForestError on NaN/±Infinity (naming row and column) or a column count
   *   different from {@link nFeatures}.
   */
  scoreSamples(X: MatrixInput): Float64Array {
    return this.scoreMatrix(this.checkInput(X));
  }

  /** sklearn's `decision_function`: {@link scoreSamples} − {@link offset}; negative = anomalous. */
  decisionFunction(X: MatrixInput): Float64Array {
    const s = this.scoreSamples(X);
    const offset = this.offset;
    for (let i = 0; i < s.length; i++) s[i] -= offset;
    return s;
  }

  /** sklearn's `predict`: −1 where {@link decisionFunction} < 0 (anomaly), 1 otherwise. */
  predict(X: MatrixInput): Int8Array {
    const d = this.decisionFunction(X);
    const out = new Int8Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = d[i] < 0 ? -1 : 1;
    return out;
  }

  /** Mean path length E[h(x)] over the trees per row (depth of the leaf reached + c(leaf size)). */
  pathLengths(X: MatrixInput): Float64Array {
    const m = this.checkInput(X);
    const acc = this.sumPathLengths(m);
    const inv = 1 / this.nEstimators;
    for (let i = 0; i < acc.length; i++) acc[i] *= inv;
    return acc;
  }

  /**
   * How much each feature made `row` easier to isolate, averaged over the trees.
   *
   * Along the row's path in a tree, a split on feature f at a node holding N training rows sends
   * the row to a child holding M of them. Without that split the expected remaining path would be
   * c(N); with it, it is 1 + c(M). Feature f is credited c(N) − c(M) − 1: large when the split cut
   * the row off from most of the data, slightly negative when the row stayed with the majority.
   * The credits telescope, so per row they sum to exactly c(maxSamples) − E[h(x)]: the path
   * shortening that drives the anomaly score (positive for anomalies, ≈ 0 or below for inliers).
   *
   * @returns Float64Array of length {@link nFeatures}; see {@link FeatureContributionOptions}.
   * @throws IsolationForestError on a wrong length or non-finite values.
   */
  featureContributions(row: ArrayLike<number>, options: FeatureContributionOptions = {}): Float64Array {
    const x = this.checkInput([row], 'row').data;
    const { treeStart, feature, threshold, right, samples } = this.forest;
    const out = new Float64Array(this.nFeatures);
    for (let t = 0; t < this.nEstimators; t++) {
      let node = treeStart[t];
      let f = feature[node];
      while (f >= 0) {
        const child = x[f] <= threshold[node] ? node + 1 : right[node];
        out[f] += averagePathLength(samples[node]) - averagePathLength(samples[child]) - 1;
        node = child;
        f = feature[node];
      }
    }
    const inv = 1 / this.nEstimators;
    for (let f = 0; f < out.length; f++) out[f] *= inv;
    if (options.normalize) {
      let total = 0;
      for (let f = 0; f < out.length; f++) if (out[f] > 0) total += out[f];
      for (let f = 0; f < out.length; f++) out[f] = total > 0 && out[f] > 0 ? out[f] / total : 0;
    }
    return out;
  }

  private checkInput(X: MatrixInput, what = 'X'): Matrix {
    const m = toMatrix(X, what, IsolationForestError);
    // An empty array of rows carries no width; there is nothing to score either way.
    if (m.rows === 0) return { data: m.data, rows: 0, cols: this.nFeatures };
    if (m.cols !== this.nFeatures) {
      throw new IsolationForestError(`${what} has ${m.cols} columns but the model was fitted on ${this.nFeatures}`);
    }
    assertFinite(m, what, IsolationForestError);
    return m;
  }

  /** Scores of an already validated matrix. */
  private scoreMatrix(m: Matrix): Float64Array {
    const acc = this.sumPathLengths(m);
    // Same operation order as sklearn: 2 ** (-sum_depths / (n_trees * c(psi))).
    const denominator = this.nEstimators * averagePathLength(this.maxSamples);
    for (let i = 0; i < acc.length; i++) {
      acc[i] = -Math.pow(2, denominator !== 0 ? -acc[i] / denominator : 0);
    }
    return acc;
  }

  /**
   * Sum over the trees of each row's path length (length `X.rows`), walking `width` rows side by
   * side (1, 4 or 8) instead of the width the batch size picks. For benchmarks and specs of the
   * scoring kernels: every width gives bit-identical sums. Trees too tall for the dense layout use
   * the one scorer they have. @throws IsolationForestError as {@link scoreSamples}.
   */
  pathSumsWithWidth(X: MatrixInput, width: 1 | 4 | 8): Float64Array {
    return this.sumPathLengths(this.checkInput(X), width);
  }

  /** Sum over trees of the path length of each row. */
  private sumPathLengths(m: Matrix, width?: 1 | 4 | 8): Float64Array {
    const acc = new Float64Array(m.rows);
    if (m.rows === 0) return acc;
    const f = this.forest;
    const dense = f.dense;
    // The kernel is picked by the batch size; `width` forces one.
    const pickBy = width === undefined ? m.rows : width === 1 ? 0 : width === 4 ? DENSE_WIDTH_4_MIN_ROWS : DENSE_WIDTH_8_MIN_ROWS;
    for (let r0 = 0; r0 < m.rows; r0 += SCORE_BLOCK_ROWS) {
      const r1 = Math.min(m.rows, r0 + SCORE_BLOCK_ROWS);
      if (dense !== null) {
        scoreDenseBlock(
          pickBy,
          dense.feature,
          dense.threshold,
          dense.leafValue,
          this.nEstimators,
          this.heightLimit,
          m.data,
          m.cols,
          r0,
          r1,
          acc,
        );
      } else {
        scoreSparseBlock(f.feature, f.threshold, f.right, f.leafValue, f.treeStart, m.data, m.cols, r0, r1, acc);
      }
    }
    return acc;
  }
}

// ---------------------------------------------------------------------------------------------
// Options

interface ResolvedOptions {
  readonly nEstimators: number;
  readonly maxSamples: number;
  readonly maxFeatures: number;
  readonly heightLimit: number;
  readonly contamination: ContaminationOption;
  readonly seed: number;
}

function heightLimitFor(maxSamples: number): number {
  return Math.ceil(Math.log2(Math.max(maxSamples, 2)));
}

function resolveOptions(o: IsolationForestOptions, rows: number, cols: number): ResolvedOptions {
  if (typeof o !== 'object' || o === null) {
    throw new IsolationForestError('options must be an object');
  }
  const nEstimators = o.nEstimators ?? 100;
  if (!Number.isInteger(nEstimators) || nEstimators < 1) {
    throw new IsolationForestError(`nEstimators must be an integer >= 1, got ${String(nEstimators)}`);
  }

  const ms = o.maxSamples ?? 'auto';
  let maxSamples: number;
  if (ms === 'auto') maxSamples = Math.min(256, rows);
  else if (typeof ms === 'number' && ms > 0 && ms <= 1) maxSamples = Math.max(1, Math.floor(ms * rows));
  else if (typeof ms === 'number' && Number.isInteger(ms) && ms > 1) maxSamples = Math.min(ms, rows);
  else {
    throw new IsolationForestError(
      `maxSamples must be 'auto', a fraction in (0, 1] or an integer > 1, got ${String(ms)}`,
    );
  }
  if (maxSamples > 2 ** 31 - 1) {
    throw new IsolationForestError(`maxSamples ${maxSamples} is too large (limit 2^31 - 1)`);
  }

  const mf = o.maxFeatures ?? 1;
  let maxFeatures: number;
  if (typeof mf === 'number' && mf > 0 && mf <= 1) maxFeatures = Math.max(1, Math.floor(mf * cols));
  else if (typeof mf === 'number' && Number.isInteger(mf) && mf > 1 && mf <= cols) maxFeatures = mf;
  else {
    throw new IsolationForestError(
      `maxFeatures must be a fraction in (0, 1] or an integer in (1, ${cols}] (X has ${cols} columns), got ${String(mf)}`,
    );
  }

  const contamination = o.contamination ?? 'auto';
  if (contamination !== 'auto' && !(typeof contamination === 'number' && contamination > 0 && contamination <= 0.5)) {
    throw new IsolationForestError(
      `contamination must be 'auto' or a number in (0, 0.5], got ${String(contamination)}`,
    );
  }

  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new IsolationForestError(`seed must be a safe integer, got ${String(seed)}`);
  }

  return {
    nEstimators,
    maxSamples,
    maxFeatures,
    heightLimit: heightLimitFor(maxSamples),
    contamination,
    seed,
  };
}

// ---------------------------------------------------------------------------------------------
// Fitting

/**
 * Per-node output arrays of a fit, grown geometrically: the forest size is only known once it
 * is grown, but each tree has at most `maxNodesPerTree` nodes, so capacity is ensured once per
 * tree and the growing loop writes by index without further checks.
 */
class NodeBuffers {
  length = 0;
  feature: Int32Array;
  threshold: Float64Array;
  right: Int32Array;
  samples: Int32Array;
  leafValue: Float64Array;

  constructor(capacity: number) {
    this.feature = new Int32Array(capacity);
    this.threshold = new Float64Array(capacity);
    this.right = new Int32Array(capacity);
    this.samples = new Int32Array(capacity);
    this.leafValue = new Float64Array(capacity);
  }

  ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.feature.length) return;
    const cap = Math.max(need, this.feature.length * 2);
    this.feature = grow(this.feature, new Int32Array(cap));
    this.threshold = grow(this.threshold, new Float64Array(cap));
    this.right = grow(this.right, new Int32Array(cap));
    this.samples = grow(this.samples, new Int32Array(cap));
    this.leafValue = grow(this.leafValue, new Float64Array(cap));
  }
}

function grow<T extends Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * Scratch state of one fit. Growing is split into small functions on purpose: a fit runs once
 * per process in the benchmark, and V8 optimises small hot functions much sooner (and compiles
 * them faster) than one large one, which matters more here than call overhead.
 */
interface Grower {
  readonly rng: Rng;
  readonly data: Float64Array;
  readonly cols: number;
  /** Rows per tree (k). */
  readonly k: number;
  /** Columns per tree. */
  readonly nf: number;
  readonly heightLimit: number;
  /** Original column index of each of the tree's columns. */
  readonly treeCols: Int32Array;
  /**
   * The tree's rows (indices into data), partitioned in place so each node owns a contiguous
   * range. Rows are read from data directly rather than copied: a node scans one column of its
   * rows, so copying all columns of every sampled row would be most of the work on wide data.
   */
  readonly idx: Int32Array;
  /** Candidate columns of the current node. */
  readonly cand: Int32Array;
  /** min and max of the last scanned column. */
  readonly range: Float64Array;
  /** Uniform doubles drawn ahead in bulk (see Rng.fillDoubles); `poolPos` is the next unused. */
  readonly pool: Float64Array;
  poolPos: number;
  /**
   * Depth-first stack of pending right children (at most one per level): row range, depth,
   * parent node, heap slot (used by the dense layout only).
   */
  readonly stStart: Int32Array;
  readonly stEnd: Int32Array;
  readonly stDepth: Int32Array;
  readonly stParent: Int32Array;
  readonly stSlot: Int32Array;
  readonly nodes: NodeBuffers;
  readonly dense: DenseForest | null;
}

/** Grow all trees straight into the in-memory layout (per-node arrays and, if used, dense). */
function growForest(m: Matrix, o: ResolvedOptions): Forest {
  const k = o.maxSamples;
  const nf = o.maxFeatures;
  const h = o.heightLimit;
  const nTrees = o.nEstimators;
  const rowPerm = new Int32Array(m.rows);
  for (let i = 0; i < m.rows; i++) rowPerm[i] = i;
  const colPerm = new Int32Array(m.cols);
  for (let i = 0; i < m.cols; i++) colPerm[i] = i;
  const maxNodesPerTree = Math.min(2 * k - 1, 2 ** (h + 1) - 1);
  const useDense = h <= DENSE_MAX_HEIGHT;
  const g: Grower = {
    rng: new Rng(o.seed),
    data: m.data,
    cols: m.cols,
    k,
    nf,
    heightLimit: h,
    treeCols: new Int32Array(nf),
    idx: new Int32Array(k),
    cand: new Int32Array(nf),
    range: new Float64Array(2),
    pool: new Float64Array(RNG_POOL_SIZE),
    poolPos: RNG_POOL_SIZE,
    stStart: new Int32Array(h + 2),
    stEnd: new Int32Array(h + 2),
    stDepth: new Int32Array(h + 2),
    stParent: new Int32Array(h + 2),
    stSlot: new Int32Array(h + 2),
    nodes: new NodeBuffers(Math.min(nTrees * maxNodesPerTree, 1 << 22)),
    dense: useDense
      ? {
          feature: new Int32Array(nTrees * ((1 << h) - 1)),
          threshold: new Float64Array(nTrees * ((1 << h) - 1)),
          leafValue: new Float64Array(nTrees * (1 << h)),
        }
      : null,
  };
  for (let c = 0; c < nf; c++) g.cand[c] = c;
  const treeStart = new Int32Array(nTrees);
  const draws = new Float64Array(Math.max(k, nf));
  for (let t = 0; t < nTrees; t++) {
    // Like sklearn's bagging: the tree's columns, then its rows, each without replacement.
    if (nf < m.cols) {
      drawSubset(g.rng, colPerm, nf, draws);
      g.treeCols.set(colPerm.subarray(0, nf));
    } else {
      g.treeCols.set(colPerm);
    }
    if (k < m.rows) drawSubset(g.rng, rowPerm, k, draws);
    g.idx.set(rowPerm.subarray(0, k));
    g.nodes.ensure(maxNodesPerTree);
    treeStart[t] = g.nodes.length;
    growTree(g, t);
  }
  const n = g.nodes.length;
  return {
    treeStart,
    feature: g.nodes.feature.slice(0, n),
    threshold: g.nodes.threshold.slice(0, n),
    right: g.nodes.right.slice(0, n),
    samples: g.nodes.samples.slice(0, n),
    leafValue: g.nodes.leafValue.slice(0, n),
    dense: g.dense,
  };
}

/**
 * Partial Fisher–Yates: afterwards perm[0..k) is a uniform random k-subset. Whatever order perm
 * is in beforehand, so the same buffer serves every tree without being reset. `draws` is
 * scratch space for k uniform doubles (floor(u · m) is uniform on [0, m) up to m / 2^53).
 */
function drawSubset(rng: Rng, perm: Int32Array, k: number, draws: Float64Array): void {
  const n = perm.length;
  rng.fillDoubles(draws, k);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(draws[i] * (n - i));
    const tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
}

/**
 * Grow tree `t` over the rows in g.idx depth-first, appending its nodes in pre-order (capacity
 * was ensured by the caller) and, when used, filling its slots of the dense layout.
 */
function growTree(g: Grower, t: number): void {
  // Until V8 has optimised this function (its compile takes a good part of a small fit), it runs
  // as baseline code whose cost is per bytecode: hence the lean loop, descending into the left
  // child directly and stacking only right children, and no writes of zeros into fresh buffers.
  const { rng, data, cols, k, nf, heightLimit, idx, cand, range, treeCols, pool } = g;
  const { stStart, stEnd, stDepth, stParent, stSlot, nodes, dense } = g;
  const { feature, threshold, right, samples, leafValue } = nodes;
  const nInternal = (1 << heightLimit) - 1;
  const denseBase = t * nInternal;
  const leafBase = t * (nInternal + 1) - nInternal;
  let id = nodes.length;
  let pp = g.poolPos;
  let sp = 0;
  // The current node: rows idx[start, end), depth, heap slot.
  let start = 0;
  let end = k;
  let depth = 0;
  let slot = 0;
  for (;;) {
    const node = id++;
    const n = end - start;
    samples[node] = n;

    let chosen = -1;
    if (depth < heightLimit && n > 1) {
      // Draw columns uniformly until one is not constant in the node, setting constant ones
      // aside: a uniform pick among the non-constant columns, as sklearn's random splitter
      // with max_features=1 makes. All constant → leaf. cand stays a permutation of the
      // tree's columns (set-aside ones are swapped to the end), so it needs no reset.
      let remaining = nf;
      while (remaining > 0) {
        let j = 0;
        if (remaining > 1) {
          if (pp === RNG_POOL_SIZE) {
            rng.fillDoubles(pool);
            pp = 0;
          }
          j = Math.floor(pool[pp++] * remaining);
        }
        const c = cand[j];
        columnRange(data, cols, treeCols[c], idx, start, end, range);
        if (range[1] > range[0]) {
          chosen = treeCols[c];
          break;
        }
        remaining--;
        cand[j] = cand[remaining];
        cand[remaining] = c;
      }
    }

    if (chosen < 0) {
      // Leaf (threshold and right child stay 0 from the fresh buffers; feature −1 marks it).
      const value = depth + averagePathLength(n);
      feature[node] = -1;
      leafValue[node] = value;
      if (dense !== null) fillDenseLeaf(dense.leafValue, leafBase, heightLimit, slot, depth, value);
      if (sp === 0) break;
      // Continue with the most recent pending right child.
      sp--;
      start = stStart[sp];
      end = stEnd[sp];
      depth = stDepth[sp];
      slot = stSlot[sp];
      right[stParent[sp]] = id;
      continue;
    }

    const lo = range[0];
    const hi = range[1];
    if (pp === RNG_POOL_SIZE) {
      rng.fillDoubles(pool);
      pp = 0;
    }
    let thr = lo + (hi - lo) * pool[pp++];
    // Rounding can land on the max, which would send every row left (sklearn does the same).
    if (thr >= hi) thr = lo;
    const mid = partition(data, cols, chosen, idx, start, end, thr);
    feature[node] = chosen;
    threshold[node] = thr;
    if (dense !== null) {
      dense.feature[denseBase + slot] = chosen;
      dense.threshold[denseBase + slot] = thr;
    }
    // Stack the right child; go on with the left one, which is thus node + 1 (pre-order).
    depth++;
    stStart[sp] = mid;
    stEnd[sp] = end;
    stDepth[sp] = depth;
    stParent[sp] = node;
    stSlot[sp] = 2 * slot + 2;
    sp++;
    end = mid;
    slot = 2 * slot + 1;
  }
  nodes.length = id;
  g.poolPos = pp;
}

/** out[0], out[1] = min, max of column `col` over rows idx[start, end). */
function columnRange(
  data: Float64Array,
  cols: number,
  col: number,
  idx: Int32Array,
  start: number,
  end: number,
  out: Float64Array,
): void {
  let mn = data[idx[start] * cols + col];
  let mx = mn;
  for (let p = start + 1; p < end; p++) {
    const v = data[idx[p] * cols + col];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  out[0] = mn;
  out[1] = mx;
}

/**
 * Reorder idx[start, end) so rows with column value <= thr come first (quicksort-style, in
 * place); returns the index of the first row of the right part.
 */
function partition(
  data: Float64Array,
  cols: number,
  col: number,
  idx: Int32Array,
  start: number,
  end: number,
  thr: number,
): number {
  let i = start;
  let j = end - 1;
  while (i <= j) {
    const a = idx[i];
    if (data[a * cols + col] <= thr) i++;
    else {
      idx[i] = idx[j];
      idx[j] = a;
      j--;
    }
  }
  return i;
}

// ---------------------------------------------------------------------------------------------
// Derived layouts

/**
 * Derive per-node arrays (threshold, right child, sample counts, depth, leaf values) from the
 * canonical pre-order form, validating it on the way: this is the single place a fitted or a
 * deserialised model goes through, so both score identically. Plain linear passes (no
 * recursion, no closures): this runs once per model, mostly before V8 has optimised anything.
 */
function linkTrees(trees: TreeArrays, p: ModelParams): Forest {
  const { nodeCounts, feature } = trees;
  const nTrees = nodeCounts.length;
  const total = feature.length;
  const treeStart = new Int32Array(nTrees + 1);
  let maxCount = 0;
  for (let t = 0; t < nTrees; t++) {
    const c = nodeCounts[t];
    if (!(c >= 1)) throw new IsolationForestError(`serialised model: tree ${t} has ${c} nodes`);
    treeStart[t + 1] = treeStart[t] + c;
    if (c > maxCount) maxCount = c;
  }
  if (treeStart[nTrees] !== total) {
    throw new IsolationForestError(
      `serialised model: node counts add up to ${treeStart[nTrees]} but there are ${total} nodes`,
    );
  }

  // Pass 1: spread thresholds and leaf sizes over the nodes.
  const threshold = new Float64Array(total);
  const samples = new Int32Array(total);
  let thrPos = 0;
  let leafPos = 0;
  const nThr = trees.threshold.length;
  const nLeaf = trees.leafSamples.length;
  for (let i = 0; i < total; i++) {
    const f = feature[i];
    if (f >= 0) {
      if (f >= p.nFeatures) malformed(i, `feature ${f} >= nFeatures ${p.nFeatures}`);
      if (thrPos >= nThr) malformed(i, 'fewer thresholds than internal nodes');
      const thr = trees.threshold[thrPos++];
      if (!Number.isFinite(thr)) malformed(i, 'non-finite threshold');
      threshold[i] = thr;
    } else {
      if (f !== -1) malformed(i, `feature ${f}`);
      if (leafPos >= nLeaf) malformed(i, 'fewer leaf sizes than leaves');
      const n = trees.leafSamples[leafPos++];
      if (!(n >= 1)) malformed(i, `leaf with ${n} samples`);
      samples[i] = n;
    }
  }
  if (thrPos !== nThr || leafPos !== nLeaf) {
    throw new IsolationForestError('serialised model: more thresholds or leaf sizes than the trees have nodes for');
  }

  // Pass 2, backwards: reverse pre-order meets a node after both its subtrees, left on top of
  // the stack, so subtree sizes (hence right-child positions) and sample counts fall out.
  const right = new Int32Array(total);
  const stSize = new Int32Array(maxCount + 1);
  const stSamples = new Float64Array(maxCount + 1);
  for (let t = 0; t < nTrees; t++) {
    const first = treeStart[t];
    let sp = 0;
    for (let i = treeStart[t + 1] - 1; i >= first; i--) {
      if (feature[i] < 0) {
        stSize[sp] = 1;
        stSamples[sp] = samples[i];
        sp++;
      } else {
        if (sp < 2) malformed(i, 'a split without two subtrees');
        const leftSize = stSize[sp - 1];
        const n = stSamples[sp - 1] + stSamples[sp - 2];
        sp--;
        stSize[sp - 1] = 1 + leftSize + stSize[sp - 1];
        stSamples[sp - 1] = n;
        right[i] = i + 1 + leftSize;
        if (n > 2147483647) malformed(i, 'sample count overflow');
        samples[i] = n;
      }
    }
    if (sp !== 1) malformed(first, 'nodes that do not form one tree');
    if (samples[first] !== p.maxSamples) {
      malformed(first, `root holds ${samples[first]} samples, expected maxSamples ${p.maxSamples}`);
    }
  }

  // Pass 3, forwards: depths (a child comes after its parent) and leaf path lengths.
  const depth = new Int32Array(total);
  const leafValue = new Float64Array(total);
  const h = p.heightLimit;
  for (let i = 0; i < total; i++) {
    const d = depth[i];
    if (feature[i] >= 0) {
      if (d >= h) malformed(i, `split at depth ${d}, height limit ${h}`);
      depth[i + 1] = d + 1;
      depth[right[i]] = d + 1;
    } else {
      leafValue[i] = d + averagePathLength(samples[i]);
    }
  }
  const forest = {
    treeStart: treeStart.slice(0, nTrees),
    feature,
    threshold,
    right,
    samples,
    leafValue,
    dense: null,
  };
  return h <= DENSE_MAX_HEIGHT ? { ...forest, dense: buildDense(h, forest, depth) } : forest;
}

/** The serialised {@link TreeArrays} of a forest: thresholds of splits and sizes of leaves only. */
function packTrees(f: Forest): IsolationForestJson['trees'] {
  const total = f.feature.length;
  const nTrees = f.treeStart.length;
  const nodeCounts = new Int32Array(nTrees);
  for (let t = 0; t < nTrees; t++) {
    nodeCounts[t] = (t + 1 < nTrees ? f.treeStart[t + 1] : total) - f.treeStart[t];
  }
  let nSplits = 0;
  for (let i = 0; i < total; i++) if (f.feature[i] >= 0) nSplits++;
  const threshold = new Float64Array(nSplits);
  const leafSamples = new Int32Array(total - nSplits);
  for (let i = 0, a = 0, b = 0; i < total; i++) {
    if (f.feature[i] >= 0) threshold[a++] = f.threshold[i];
    else leafSamples[b++] = f.samples[i];
  }
  return {
    nodeCounts: encodeInt32(nodeCounts),
    feature: encodeInt32(f.feature),
    threshold: encodeFloat64(threshold),
    leafSamples: encodeInt32(leafSamples),
  };
}

function malformed(node: number, why: string): never {
  throw new IsolationForestError(`serialised model: malformed tree at node ${node} (${why})`);
}

interface DenseForest {
  /** Per tree, 2^h − 1 internal slots in heap order (children of i: 2i + 1, 2i + 2). */
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  /** Per tree, 2^h bottom slots: path length of the leaf covering that slot. */
  readonly leafValue: Float64Array;
}

/**
 * Compile the trees into complete binary trees of height h (see {@link fillDenseLeaf}); used for
 * deserialised models, while a fit fills the dense layout as it grows.
 */
function buildDense(h: number, f: Forest, depth: Int32Array): DenseForest {
  const { treeStart, feature, threshold, right, leafValue } = f;
  const nTrees = treeStart.length;
  const total = feature.length;
  const nInternal = (1 << h) - 1;
  const nLeaves = 1 << h;
  const dFeature = new Int32Array(nTrees * nInternal);
  const dThreshold = new Float64Array(nTrees * nInternal);
  const dLeaf = new Float64Array(nTrees * nLeaves);
  // Heap slot of each node, set by its parent (which comes first in pre-order).
  const slot = new Int32Array(total);
  for (let t = 0; t < nTrees; t++) {
    const fBase = t * nInternal;
    const lBase = t * nLeaves - nInternal;
    const end = t + 1 < nTrees ? treeStart[t + 1] : total;
    for (let i = treeStart[t]; i < end; i++) {
      const s = slot[i];
      const f = feature[i];
      if (f >= 0) {
        dFeature[fBase + s] = f;
        dThreshold[fBase + s] = threshold[i];
        slot[i + 1] = 2 * s + 1;
        slot[right[i]] = 2 * s + 2;
      } else {
        fillDenseLeaf(dLeaf, lBase, h, s, depth[i], leafValue[i]);
      }
    }
  }
  return { feature: dFeature, threshold: dThreshold, leafValue: dLeaf };
}

/**
 * A leaf at heap slot `slot`, depth d < h, becomes a subtree of pass-through nodes (left at
 * feature 0, threshold 0: the direction taken does not matter) whose 2^(h − d) bottom slots,
 * a contiguous run, all carry the leaf's value.
 */
function fillDenseLeaf(
  leafValues: Float64Array,
  leafBase: number,
  h: number,
  slot: number,
  depth: number,
  value: number,
): void {
  const below = h - depth;
  const first = leafBase + ((slot + 1) << below) - 1;
  if (below === 0) leafValues[first] = value;
  else leafValues.fill(value, first, first + (1 << below));
}

// ---------------------------------------------------------------------------------------------
// Scoring kernels (hot paths: flat typed arrays, indexed loops, no allocation)

/**
 * Add each tree's path length to acc[r] for rows [r0, r1), padded heap layout.
 *
 * One row's walk is a chain of dependent loads (node → feature → x → compare → node), so
 * walking several rows together gives the CPU independent work: 3–4× faster once optimised
 * (see {@link DENSE_WIDTH_4_MIN_ROWS}). A wider kernel takes V8 longer to compile (≈ 20 ms for 8
 * rows against 2 ms for one), but a process pays that once and a service scores batches for
 * days, so the widest kernel the batch fills is taken; `n` picks it (the batch size, or the
 * width a caller forces). The kernels walk one
 * tree per call: V8 then swaps in optimised code at the next call instead of needing on-stack
 * replacement inside a long-running loop, which shortens the warm-up of a one-off batch.
 */
function scoreDenseBlock(
  n: number,
  feature: Int32Array,
  threshold: Float64Array,
  leafValue: Float64Array,
  nTrees: number,
  h: number,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  const nInternal = ((1 << h) - 1) | 0;
  const nLeaves = (nInternal + 1) | 0;
  if (n < DENSE_WIDTH_4_MIN_ROWS) {
    scoreDenseRowTrees8(feature, threshold, leafValue, nTrees, nInternal, nLeaves, h, x, cols, r0, r1, acc);
    return;
  }
  const kernel = n < DENSE_WIDTH_8_MIN_ROWS ? scoreDenseTree4 : scoreDenseTree8;
  for (let t = 0; t < nTrees; t++) {
    kernel(feature, threshold, leafValue, (t * nInternal) | 0, (t * nLeaves - nInternal) | 0, h, x, cols, r0, r1, acc);
  }
}

/*
 * Tree kernels: `fb` is the tree's first internal slot, `lb` its first bottom slot minus 2^h − 1.
 * All index arithmetic stays in int32 with `| 0` (no overflow checks), and `+(a > b)` compiles
 * to a flag-set instead of a branch that would mispredict half the time. After h steps,
 * i − (2^h − 1) is the bottom slot reached.
 */

/** One row at a time. */
function scoreDenseTree1(
  feature: Int32Array,
  threshold: Float64Array,
  leafValue: Float64Array,
  fb: number,
  lb: number,
  h: number,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  for (let r = r0; r < r1; r++) {
    const a = (r * cols) | 0;
    let i = 0;
    for (let level = 0; level < h; level++) {
      const n = (fb + i) | 0;
      i = ((i << 1) + 1 + +(x[(a + feature[n]) | 0] > threshold[n])) | 0;
    }
    acc[r] += leafValue[(lb + i) | 0];
  }
}

/**
 * One row at a time, 8 trees side by side; the trees left over one by one. For the few rows of
 * a single-event request: walking the trees one after another is one chain of dependent loads
 * through a model that the rest of the request has pushed out of the cache, ≈ 100 ns a step
 * from memory (measured in the service: 107 µs per one-row score() against 7 µs in a loop that
 * keeps the model cached); 8 independent walks overlap their misses. Each row's leaf values
 * are still added in tree order, so the sums are bit-identical to the other kernels'.
 */
function scoreDenseRowTrees8(
  feature: Int32Array,
  threshold: Float64Array,
  leafValue: Float64Array,
  nTrees: number,
  nInternal: number,
  nLeaves: number,
  h: number,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  const tw = nTrees & ~7;
  for (let r = r0; r < r1; r++) {
    const a = (r * cols) | 0;
    let sum = acc[r];
    for (let t = 0; t < tw; t += 8) {
      const f0 = (t * nInternal) | 0;
      const f1 = (f0 + nInternal) | 0;
      const f2 = (f1 + nInternal) | 0;
      const f3 = (f2 + nInternal) | 0;
      const f4 = (f3 + nInternal) | 0;
      const f5 = (f4 + nInternal) | 0;
      const f6 = (f5 + nInternal) | 0;
      const f7 = (f6 + nInternal) | 0;
      let i0 = 0;
      let i1 = 0;
      let i2 = 0;
      let i3 = 0;
      let i4 = 0;
      let i5 = 0;
      let i6 = 0;
      let i7 = 0;
      for (let level = 0; level < h; level++) {
        const n0 = (f0 + i0) | 0;
        const n1 = (f1 + i1) | 0;
        const n2 = (f2 + i2) | 0;
        const n3 = (f3 + i3) | 0;
        const n4 = (f4 + i4) | 0;
        const n5 = (f5 + i5) | 0;
        const n6 = (f6 + i6) | 0;
        const n7 = (f7 + i7) | 0;
        i0 = ((i0 << 1) + 1 + +(x[(a + feature[n0]) | 0] > threshold[n0])) | 0;
        i1 = ((i1 << 1) + 1 + +(x[(a + feature[n1]) | 0] > threshold[n1])) | 0;
        i2 = ((i2 << 1) + 1 + +(x[(a + feature[n2]) | 0] > threshold[n2])) | 0;
        i3 = ((i3 << 1) + 1 + +(x[(a + feature[n3]) | 0] > threshold[n3])) | 0;
        i4 = ((i4 << 1) + 1 + +(x[(a + feature[n4]) | 0] > threshold[n4])) | 0;
        i5 = ((i5 << 1) + 1 + +(x[(a + feature[n5]) | 0] > threshold[n5])) | 0;
        i6 = ((i6 << 1) + 1 + +(x[(a + feature[n6]) | 0] > threshold[n6])) | 0;
        i7 = ((i7 << 1) + 1 + +(x[(a + feature[n7]) | 0] > threshold[n7])) | 0;
      }
      // Leaf slot of tree k: k·2^h − (2^h − 1) + i_k.
      const l0 = (t * nLeaves - nInternal) | 0;
      sum += leafValue[(l0 + i0) | 0];
      sum += leafValue[(l0 + nLeaves + i1) | 0];
      sum += leafValue[(l0 + 2 * nLeaves + i2) | 0];
      sum += leafValue[(l0 + 3 * nLeaves + i3) | 0];
      sum += leafValue[(l0 + 4 * nLeaves + i4) | 0];
      sum += leafValue[(l0 + 5 * nLeaves + i5) | 0];
      sum += leafValue[(l0 + 6 * nLeaves + i6) | 0];
      sum += leafValue[(l0 + 7 * nLeaves + i7) | 0];
    }
    for (let t = tw; t < nTrees; t++) {
      const fb = (t * nInternal) | 0;
      let i = 0;
      for (let level = 0; level < h; level++) {
        const n = (fb + i) | 0;
        i = ((i << 1) + 1 + +(x[(a + feature[n]) | 0] > threshold[n])) | 0;
      }
      sum += leafValue[(t * nLeaves - nInternal + i) | 0];
    }
    acc[r] = sum;
  }
}

/** 4 rows side by side; the remainder goes to {@link scoreDenseTree1}. */
function scoreDenseTree4(
  feature: Int32Array,
  threshold: Float64Array,
  leafValue: Float64Array,
  fb: number,
  lb: number,
  h: number,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  const rw = r0 + ((r1 - r0) & ~3);
  for (let r = r0; r < rw; r += 4) {
    const a0 = (r * cols) | 0;
    const a1 = (a0 + cols) | 0;
    const a2 = (a1 + cols) | 0;
    const a3 = (a2 + cols) | 0;
    let i0 = 0;
    let i1 = 0;
    let i2 = 0;
    let i3 = 0;
    for (let level = 0; level < h; level++) {
      const n0 = (fb + i0) | 0;
      const n1 = (fb + i1) | 0;
      const n2 = (fb + i2) | 0;
      const n3 = (fb + i3) | 0;
      i0 = ((i0 << 1) + 1 + +(x[(a0 + feature[n0]) | 0] > threshold[n0])) | 0;
      i1 = ((i1 << 1) + 1 + +(x[(a1 + feature[n1]) | 0] > threshold[n1])) | 0;
      i2 = ((i2 << 1) + 1 + +(x[(a2 + feature[n2]) | 0] > threshold[n2])) | 0;
      i3 = ((i3 << 1) + 1 + +(x[(a3 + feature[n3]) | 0] > threshold[n3])) | 0;
    }
    acc[r] += leafValue[(lb + i0) | 0];
    acc[r + 1] += leafValue[(lb + i1) | 0];
    acc[r + 2] += leafValue[(lb + i2) | 0];
    acc[r + 3] += leafValue[(lb + i3) | 0];
  }
  if (rw < r1) scoreDenseTree1(feature, threshold, leafValue, fb, lb, h, x, cols, rw, r1, acc);
}

/** 8 rows side by side; the remainder goes to {@link scoreDenseTree4}. */
function scoreDenseTree8(
  feature: Int32Array,
  threshold: Float64Array,
  leafValue: Float64Array,
  fb: number,
  lb: number,
  h: number,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  const rw = r0 + ((r1 - r0) & ~7);
  for (let r = r0; r < rw; r += 8) {
    const a0 = (r * cols) | 0;
    const a1 = (a0 + cols) | 0;
    const a2 = (a1 + cols) | 0;
    const a3 = (a2 + cols) | 0;
    const a4 = (a3 + cols) | 0;
    const a5 = (a4 + cols) | 0;
    const a6 = (a5 + cols) | 0;
    const a7 = (a6 + cols) | 0;
    let i0 = 0;
    let i1 = 0;
    let i2 = 0;
    let i3 = 0;
    let i4 = 0;
    let i5 = 0;
    let i6 = 0;
    let i7 = 0;
    for (let level = 0; level < h; level++) {
      const n0 = (fb + i0) | 0;
      const n1 = (fb + i1) | 0;
      const n2 = (fb + i2) | 0;
      const n3 = (fb + i3) | 0;
      const n4 = (fb + i4) | 0;
      const n5 = (fb + i5) | 0;
      const n6 = (fb + i6) | 0;
      const n7 = (fb + i7) | 0;
      i0 = ((i0 << 1) + 1 + +(x[(a0 + feature[n0]) | 0] > threshold[n0])) | 0;
      i1 = ((i1 << 1) + 1 + +(x[(a1 + feature[n1]) | 0] > threshold[n1])) | 0;
      i2 = ((i2 << 1) + 1 + +(x[(a2 + feature[n2]) | 0] > threshold[n2])) | 0;
      i3 = ((i3 << 1) + 1 + +(x[(a3 + feature[n3]) | 0] > threshold[n3])) | 0;
      i4 = ((i4 << 1) + 1 + +(x[(a4 + feature[n4]) | 0] > threshold[n4])) | 0;
      i5 = ((i5 << 1) + 1 + +(x[(a5 + feature[n5]) | 0] > threshold[n5])) | 0;
      i6 = ((i6 << 1) + 1 + +(x[(a6 + feature[n6]) | 0] > threshold[n6])) | 0;
      i7 = ((i7 << 1) + 1 + +(x[(a7 + feature[n7]) | 0] > threshold[n7])) | 0;
    }
    acc[r] += leafValue[(lb + i0) | 0];
    acc[r + 1] += leafValue[(lb + i1) | 0];
    acc[r + 2] += leafValue[(lb + i2) | 0];
    acc[r + 3] += leafValue[(lb + i3) | 0];
    acc[r + 4] += leafValue[(lb + i4) | 0];
    acc[r + 5] += leafValue[(lb + i5) | 0];
    acc[r + 6] += leafValue[(lb + i6) | 0];
    acc[r + 7] += leafValue[(lb + i7) | 0];
  }
  if (rw < r1) scoreDenseTree4(feature, threshold, leafValue, fb, lb, h, x, cols, rw, r1, acc);
}

/** Same for trees too tall for the heap layout: pre-order walk, left child = node + 1. */
function scoreSparseBlock(
  feature: Int32Array,
  threshold: Float64Array,
  right: Int32Array,
  leafValue: Float64Array,
  treeStart: Int32Array,
  x: Float64Array,
  cols: number,
  r0: number,
  r1: number,
  acc: Float64Array,
): void {
  const nTrees = treeStart.length;
  for (let t = 0; t < nTrees; t++) {
    const root = treeStart[t];
    for (let r = r0; r < r1; r++) {
      const base = r * cols;
      let node = root;
      let f = feature[node];
      while (f >= 0) {
        node = x[base + f] <= threshold[node] ? node + 1 : right[node];
        f = feature[node];
      }
      acc[r] += leafValue[node];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Little-endian base64 codecs (explicit byte order so models move between machines)

function encodeInt32(a: Int32Array): string {
  const buf = Buffer.allocUnsafe(a.length * 4);
  for (let i = 0; i < a.length; i++) buf.writeInt32LE(a[i], i * 4);
  return buf.toString('base64');
}

function encodeFloat64(a: Float64Array): string {
  const buf = Buffer.allocUnsafe(a.length * 8);
  for (let i = 0; i < a.length; i++) buf.writeDoubleLE(a[i], i * 8);
  return buf.toString('base64');
}

function decodeBytes(s: unknown, what: string, width: number): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new IsolationForestError(`serialised model: ${what} must be a base64 string`);
  }
  const buf = Buffer.from(s, 'base64');
  if (buf.length % width !== 0) {
    throw new IsolationForestError(`serialised model: ${what} has ${buf.length} bytes, not a multiple of ${width}`);
  }
  return buf;
}

function decodeInt32(s: unknown, what: string): Int32Array {
  const buf = decodeBytes(s, what, 4);
  const out = new Int32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt32LE(i * 4);
  return out;
}

function decodeFloat64(s: unknown, what: string): Float64Array {
  const buf = decodeBytes(s, what, 8);
  const out = new Float64Array(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}
