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

/** Trees in pre-order, concatenated; the canonical form everything else is derived from. */
interface TreeArrays {
  readonly nodeCounts: Int32Array;
  /** Split column per node; −1 marks a leaf. */
  readonly feature: Int32Array;
  /** Threshold per internal node, in pre-order (leaves have none). */
  readonly threshold: Float64Array;
  /** Training rows per leaf, in pre-order. */
  readonly leafSamples: Int32Array;
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

  private readonly trees: TreeArrays;
  /** Global index of each tree's root in the pre-order arrays. */
  private readonly treeStart: Int32Array;
  /** Per node (pre-order): split column, −1 for a leaf. Same array as trees.feature. */
  private readonly nodeFeature: Int32Array;
  /** Per node: threshold (0 for leaves). */
  private readonly nodeThreshold: Float64Array;
  /** Per node: global index of the right child (left child is i + 1); −1 for leaves. */
  private readonly nodeRight: Int32Array;
  /** Per node: training rows that reached it. */
  private readonly nodeSamples: Int32Array;
  /** Per node: depth + c(samples) for leaves, 0 for internal nodes. */
  private readonly nodeLeafValue: Float64Array;
  /** Padded heap layout for scoring, or null when the trees are too tall for it. */
  private readonly dense: DenseForest | null;

  private constructor(params: ModelParams, trees: TreeArrays) {
    this.nFeatures = params.nFeatures;
    this.nEstimators = params.nEstimators;
    this.maxSamples = params.maxSamples;
    this.maxFeatures = params.maxFeatures;
    this.heightLimit = params.heightLimit;
    this.contamination = params.contamination;
    this.offset = params.offset;
    this.seed = params.seed;
    this.trees = trees;

    const linked = linkTrees(trees, params);
    this.treeStart = linked.treeStart;
    this.nodeFeature = trees.feature;
    this.nodeThreshold = linked.threshold;
    this.nodeRight = linked.right;
    this.nodeSamples = linked.samples;
    this.nodeLeafValue = linked.leafValue;
    this.dense =
      params.heightLimit <= DENSE_MAX_HEIGHT
        ? buildDense(
            params.nEstimators,
            params.heightLimit,
            this.treeStart,
            this.nodeFeature,
            this.nodeThreshold,
            this.nodeRight,
            this.nodeLeafValue,
          )
        : null;
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
    const trees = growForest(m, o);
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
    const model = new IsolationForest(params, trees);
    if (o.contamination === 'auto') return model;
    // Like sklearn: offset = np.percentile(score_samples(X), 100 * contamination).
    const scores = model.scoreMatrix(m).sort();
    const offset = quantileSorted(scores, o.contamination);
    return new IsolationForest({ ...params, offset }, trees);
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
    if (
      contamination !== 'auto' &&
      !(typeof contamination === 'number' && contamination > 0 && contamination <= 0.5)
    ) {
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
    // The constructor validates the tree structure itself (see linkTrees).
    return new IsolationForest(
      { nFeatures, nEstimators, maxSamples, maxFeatures, heightLimit, contamination, offset, seed },
      trees,
    );
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
      trees: {
        nodeCounts: encodeInt32(this.trees.nodeCounts),
        feature: encodeInt32(this.trees.feature),
        threshold: encodeFloat64(this.trees.threshold),
        leafSamples: encodeInt32(this.trees.leafSamples),
      },
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
  featureContributions(
    row: ArrayLike<number>,
    options: FeatureContributionOptions = {},
  ): Float64Array {
    const x = this.checkInput([row], 'row').data;
    const feature = this.nodeFeature;
    const threshold = this.nodeThreshold;
    const right = this.nodeRight;
    const samples = this.nodeSamples;
    const out = new Float64Array(this.nFeatures);
    for (let t = 0; t < this.nEstimators; t++) {
      let node = this.treeStart[t];
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
      throw new IsolationForestError(
        `${what} has ${m.cols} columns but the model was fitted on ${this.nFeatures}`,
      );
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

  /** Sum over trees of the path length of each row. */
  private sumPathLengths(m: Matrix): Float64Array {
    const acc = new Float64Array(m.rows);
    if (m.rows === 0) return acc;
    const dense = this.dense;
    for (let r0 = 0; r0 < m.rows; r0 += SCORE_BLOCK_ROWS) {
      const r1 = Math.min(m.rows, r0 + SCORE_BLOCK_ROWS);
      if (dense !== null) {
        scoreDenseBlock(dense.feature, dense.threshold, dense.leafValue, this.nEstimators,
          this.heightLimit, m.data, m.cols, r0, r1, acc);
      } else {
        scoreSparseBlock(this.nodeFeature, this.nodeThreshold, this.nodeRight,
          this.nodeLeafValue, this.treeStart, m.data, m.cols, r0, r1, acc);
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
  if (
    contamination !== 'auto' &&
    !(typeof contamination === 'number' && contamination > 0 && contamination <= 0.5)
  ) {
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

/** Append-only typed-array lists: the forest size is only known once it is grown. */
class Int32List {
  data: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Int32Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

class Float64List {
  data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  toArray(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

/** Grow all trees; returns them in the canonical pre-order form. */
function growForest(m: Matrix, o: ResolvedOptions): TreeArrays {
  const rng = new Rng(o.seed);
  const { rows, cols, data } = m;
  const k = o.maxSamples;
  const nf = o.maxFeatures;
  const h = o.heightLimit;

  // Partial Fisher–Yates on a persistent permutation: the first k entries after k swaps are a
  // uniform k-subset whatever the starting permutation, so the buffer never needs resetting.
  const rowPerm = new Int32Array(rows);
  for (let i = 0; i < rows; i++) rowPerm[i] = i;
  const colPerm = new Int32Array(cols);
  for (let i = 0; i < cols; i++) colPerm[i] = i;

  // The tree's subsample, column-major so that a node's min/max scan reads one column.
  const sub = new Float64Array(nf * k);
  const idx = new Int32Array(k);
  const cand = new Int32Array(nf);
  const treeCols = new Int32Array(nf);
  // Depth-first stack: at most one pending right sibling per level, plus the current node.
  const stackCap = h + 2;
  const stStart = new Int32Array(stackCap);
  const stEnd = new Int32Array(stackCap);
  const stDepth = new Int32Array(stackCap);

  const maxNodesPerTree = Math.min(2 * k - 1, 2 ** (h + 1) - 1);
  const nodeCounts = new Int32Array(o.nEstimators);
  const feature = new Int32List(Math.min(o.nEstimators * maxNodesPerTree, 1 << 20));
  const threshold = new Float64List(Math.min(o.nEstimators * maxNodesPerTree, 1 << 20) >> 1);
  const leafSamples = new Int32List(Math.min(o.nEstimators * maxNodesPerTree, 1 << 20) >> 1);

  for (let t = 0; t < o.nEstimators; t++) {
    // sklearn draws the tree's features, then its rows; the order of draws is irrelevant to the
    // distribution but kept alike for readability.
    if (nf < cols) {
      for (let i = 0; i < nf; i++) {
        const j = i + rng.nextInt(cols - i);
        const tmp = colPerm[i];
        colPerm[i] = colPerm[j];
        colPerm[j] = tmp;
        treeCols[i] = colPerm[i];
      }
    } else {
      for (let i = 0; i < nf; i++) treeCols[i] = i;
    }
    if (k < rows) {
      for (let i = 0; i < k; i++) {
        const j = i + rng.nextInt(rows - i);
        const tmp = rowPerm[i];
        rowPerm[i] = rowPerm[j];
        rowPerm[j] = tmp;
      }
    }
    for (let i = 0; i < k; i++) {
      const base = rowPerm[i] * cols;
      for (let c = 0; c < nf; c++) sub[c * k + i] = data[base + treeCols[c]];
      idx[i] = i;
    }

    const firstNode = feature.length;
    let sp = 0;
    stStart[0] = 0;
    stEnd[0] = k;
    stDepth[0] = 0;
    sp = 1;
    while (sp > 0) {
      sp--;
      const start = stStart[sp];
      const end = stEnd[sp];
      const depth = stDepth[sp];
      const n = end - start;

      let chosen = -1;
      let lo = 0;
      let hi = 0;
      if (depth < h && n > 1) {
        // Draw features uniformly until one is not constant in the node (sklearn's random
        // splitter with max_features=1 does the same); constant ones are set aside.
        for (let c = 0; c < nf; c++) cand[c] = c;
        let remaining = nf;
        while (remaining > 0) {
          const j = remaining > 1 ? rng.nextInt(remaining) : 0;
          const c = cand[j];
          const colBase = c * k;
          let mn = sub[colBase + idx[start]];
          let mx = mn;
          for (let p = start + 1; p < end; p++) {
            const v = sub[colBase + idx[p]];
            if (v < mn) mn = v;
            else if (v > mx) mx = v;
          }
          if (mx > mn) {
            chosen = c;
            lo = mn;
            hi = mx;
            break;
          }
          remaining--;
          cand[j] = cand[remaining];
          cand[remaining] = c;
        }
      }

      if (chosen < 0) {
        feature.push(-1);
        leafSamples.push(n);
        continue;
      }

      let thr = rng.uniform(lo, hi);
      // Rounding can land on the max, which would send every row left (sklearn does the same).
      if (thr >= hi) thr = lo;
      const colBase = chosen * k;
      let i = start;
      let j = end - 1;
      while (i <= j) {
        if (sub[colBase + idx[i]] <= thr) i++;
        else {
          const tmp = idx[i];
          idx[i] = idx[j];
          idx[j] = tmp;
          j--;
        }
      }
      feature.push(treeCols[chosen]);
      threshold.push(thr);
      // Right child first so the left one is popped next: pre-order, left child = parent + 1.
      stStart[sp] = i;
      stEnd[sp] = end;
      stDepth[sp] = depth + 1;
      sp++;
      stStart[sp] = start;
      stEnd[sp] = i;
      stDepth[sp] = depth + 1;
      sp++;
    }
    nodeCounts[t] = feature.length - firstNode;
  }
  return {
    nodeCounts,
    feature: feature.toArray(),
    threshold: threshold.toArray(),
    leafSamples: leafSamples.toArray(),
  };
}

// ---------------------------------------------------------------------------------------------
// Derived layouts

interface LinkedTrees {
  readonly treeStart: Int32Array;
  readonly threshold: Float64Array;
  readonly right: Int32Array;
  readonly samples: Int32Array;
  readonly leafValue: Float64Array;
}

/**
 * Derive per-node arrays (right child, sample counts, leaf values) from the canonical pre-order
 * form, validating it on the way: this is the single place a fitted or deserialised model goes
 * through, so both score identically.
 */
function linkTrees(trees: TreeArrays, p: ModelParams): LinkedTrees {
  const { nodeCounts, feature } = trees;
  const nTrees = nodeCounts.length;
  const total = feature.length;
  const treeStart = new Int32Array(nTrees + 1);
  for (let t = 0; t < nTrees; t++) {
    const c = nodeCounts[t];
    if (c < 1) throw new IsolationForestError(`serialised model: tree ${t} has ${c} nodes`);
    treeStart[t + 1] = treeStart[t] + c;
  }
  if (treeStart[nTrees] !== total) {
    throw new IsolationForestError(
      `serialised model: node counts add up to ${treeStart[nTrees]} but there are ${total} nodes`,
    );
  }
  const threshold = new Float64Array(total);
  const right = new Int32Array(total).fill(-1);
  const samples = new Int32Array(total);
  const leafValue = new Float64Array(total);
  let thrPos = 0;
  let leafPos = 0;
  // Explicit stacks, bounded by the height limit, so a corrupt model cannot recurse deeply.
  const stackCap = p.heightLimit + 2;
  const stNode = new Int32Array(stackCap);
  const stDepth = new Int32Array(stackCap);
  const stState = new Int8Array(stackCap); // 0: left pending, 1: right pending, 2: done
  for (let t = 0; t < nTrees; t++) {
    const end = treeStart[t + 1];
    let next = treeStart[t];
    let sp = 0;
    const bad = (why: string): never => {
      throw new IsolationForestError(`serialised model: tree ${t} is malformed (${why})`);
    };
    // visit(node at `next`, depth) returns via the stack; samples are summed on the way up.
    const open = (depth: number): void => {
      if (next >= end) bad('fewer nodes than its structure needs');
      const node = next++;
      const f = feature[node];
      if (f >= 0) {
        if (f >= p.nFeatures) bad(`feature ${f} >= nFeatures ${p.nFeatures}`);
        if (depth >= p.heightLimit) bad('split below the height limit');
        if (thrPos >= trees.threshold.length) bad('too few thresholds');
        const thr = trees.threshold[thrPos++];
        if (!Number.isFinite(thr)) bad('non-finite threshold');
        threshold[node] = thr;
        if (sp >= stackCap) bad('too deep');
        stNode[sp] = node;
        stDepth[sp] = depth;
        stState[sp] = 0;
        sp++;
      } else {
        if (f !== -1) bad(`feature ${f}`);
        if (leafPos >= trees.leafSamples.length) bad('too few leaf sample counts');
        const n = trees.leafSamples[leafPos++];
        if (n < 1) bad(`leaf with ${n} samples`);
        samples[node] = n;
        leafValue[node] = depth + averagePathLength(n);
      }
    };
    open(0);
    while (sp > 0) {
      const top = sp - 1;
      const node = stNode[top];
      const state = stState[top];
      if (state === 0) {
        stState[top] = 1;
        open(stDepth[top] + 1); // left child, which is node + 1
      } else if (state === 1) {
        stState[top] = 2;
        right[node] = next;
        open(stDepth[top] + 1);
      } else {
        samples[node] = samples[node + 1] + samples[right[node]];
        sp--;
      }
    }
    if (next !== end) bad('more nodes than its structure uses');
    if (samples[treeStart[t]] !== p.maxSamples) {
      bad(`root holds ${samples[treeStart[t]]} samples, expected maxSamples ${p.maxSamples}`);
    }
  }
  if (thrPos !== trees.threshold.length || leafPos !== trees.leafSamples.length) {
    throw new IsolationForestError('serialised model: threshold or leaf arrays have extra entries');
  }
  return { treeStart: treeStart.subarray(0, nTrees), threshold, right, samples, leafValue };
}

interface DenseForest {
  /** Per tree, 2^h − 1 internal slots in heap order (children of i: 2i + 1, 2i + 2). */
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  /** Per tree, 2^h bottom slots: path length of the leaf covering that slot. */
  readonly leafValue: Float64Array;
}

/**
 * Compile the trees into complete binary trees of height h. A leaf at depth d < h becomes a
 * subtree of pass-through nodes (feature 0, threshold 0: the direction taken does not matter)
 * whose 2^(h−d) bottom slots all carry the leaf's value.
 */
function buildDense(
  nTrees: number,
  h: number,
  treeStart: Int32Array,
  feature: Int32Array,
  threshold: Float64Array,
  right: Int32Array,
  leafValue: Float64Array,
): DenseForest {
  const nInternal = (1 << h) - 1;
  const nLeaves = 1 << h;
  const dFeature = new Int32Array(nTrees * nInternal);
  const dThreshold = new Float64Array(nTrees * nInternal);
  const dLeaf = new Float64Array(nTrees * nLeaves);
  // Depth-first: at most one pending right child per level plus the current node.
  const stNode = new Int32Array(h + 2);
  const stSlot = new Int32Array(h + 2);
  const stLevel = new Int32Array(h + 2);
  for (let t = 0; t < nTrees; t++) {
    const fBase = t * nInternal;
    const lBase = t * nLeaves;
    let sp = 0;
    stNode[0] = treeStart[t];
    stSlot[0] = 0;
    stLevel[0] = 0;
    sp = 1;
    while (sp > 0) {
      sp--;
      const node = stNode[sp];
      const slot = stSlot[sp];
      const level = stLevel[sp];
      const f = feature[node];
      if (f >= 0) {
        dFeature[fBase + slot] = f;
        dThreshold[fBase + slot] = threshold[node];
        stNode[sp] = right[node];
        stSlot[sp] = 2 * slot + 2;
        stLevel[sp] = level + 1;
        sp++;
        stNode[sp] = node + 1;
        stSlot[sp] = 2 * slot + 1;
        stLevel[sp] = level + 1;
        sp++;
      } else {
        // Bottom slots under heap slot `slot` at `level`: a contiguous run of 2^(h − level).
        const span = 1 << (h - level);
        const first = ((slot + 1) << (h - level)) - 1 - nInternal;
        dLeaf.fill(leafValue[node], lBase + first, lBase + first + span);
      }
    }
  }
  return { feature: dFeature, threshold: dThreshold, leafValue: dLeaf };
}

// ---------------------------------------------------------------------------------------------
// Scoring kernels (hot paths: flat typed arrays, indexed loops, no allocation)

/** Add each tree's path length to acc[r] for rows [r0, r1), padded heap layout. */
function scoreDenseBlock(
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
  const nInternal = (1 << h) - 1;
  const nLeaves = nInternal + 1;
  for (let t = 0; t < nTrees; t++) {
    const fBase = t * nInternal;
    const lBase = t * nLeaves - nInternal;
    for (let r = r0; r < r1; r++) {
      const base = r * cols;
      let i = 0;
      for (let level = 0; level < h; level++) {
        const n = fBase + i;
        i = 2 * i + (x[base + feature[n]] <= threshold[n] ? 1 : 2);
      }
      acc[r] += leafValue[lBase + i];
    }
  }
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
    throw new IsolationForestError(
      `serialised model: ${what} has ${buf.length} bytes, not a multiple of ${width}`,
    );
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
