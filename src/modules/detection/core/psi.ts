import { InvalidInputError } from './errors';
import { sortedCopy } from './stats';

/** Floor applied to bin proportions so that empty bins give a large but finite PSI term. */
export const PSI_EPSILON = 1e-4;

/** Reference distribution already reduced to bin proportions (e.g. stored with a model). */
export interface BinnedReference {
  /** Proportion of reference values per bin; `edges.length + 1` entries summing to 1. */
  readonly proportions: ArrayLike<number>;
}

/**
 * Inner bin edges from the quantiles of `reference`, for {@link psi}. Bins are
 * `(-inf, e0], (e0, e1], …, (e_last, +inf)`, so there are `edges.length + 1` of them.
 *
 * Edges are observed values (the inverse empirical CDF at i/nBins), deduplicated and kept
 * strictly below the reference maximum. Hence every bin holds some reference mass even when
 * values repeat a lot (a feature that is 0 in 70% of rows gets one bin for the zeros rather
 * than seven empty ones), and there are fewer than `nBins` bins in that case.
 * A constant reference gets edges `[nextDown(v), v]`: one bin for v and empty bins below and
 * above it, so that any departure from the constant shows up as drift.
 *
 * @throws InvalidInputError for an empty reference, NaN values, or nBins not an integer >= 2.
 */
export function quantileBinEdges(reference: ArrayLike<number>, nBins = 10): Float64Array {
  if (!Number.isInteger(nBins) || nBins < 2) {
    throw new InvalidInputError(`quantileBinEdges: nBins must be an integer >= 2, got ${nBins}`);
  }
  const sorted = sortedCopy(reference, 'quantileBinEdges reference');
  const n = sorted.length;
  if (n === 0) throw new InvalidInputError('quantileBinEdges: reference is empty');
  const max = sorted[n - 1];
  if (sorted[0] === max) return Float64Array.of(nextDown(max), max);
  const edges: number[] = [];
  for (let i = 1; i < nBins; i++) {
    const v = sorted[Math.max(0, Math.ceil((i * n) / nBins) - 1)];
    if (v < max && (edges.length === 0 || v > edges[edges.length - 1])) edges.push(v);
  }
  return Float64Array.from(edges);
}

/**
 * The bin of `v` among ascending inner `edges`: the number of edges strictly below it (lower
 * bound, by binary search), so a value equal to an edge belongs to the bin that edge closes.
 * 0 … edges.length. `v` must not be NaN.
 */
export function binIndex(v: number, edges: ArrayLike<number>): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Proportion of `values` in each bin defined by ascending inner `edges` (see
 * {@link quantileBinEdges}); a value equal to an edge belongs to the bin that edge closes.
 *
 * @throws InvalidInputError when `values` is empty or contains NaN.
 */
export function binProportions(values: ArrayLike<number>, edges: ArrayLike<number>): Float64Array {
  const n = values.length;
  if (n === 0) throw new InvalidInputError('binProportions: no values');
  const nEdges = edges.length;
  const counts = new Float64Array(nEdges + 1);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (Number.isNaN(v)) throw new InvalidInputError(`binProportions: NaN at index ${i}`);
    counts[binIndex(v, edges)]++;
  }
  for (let b = 0; b <= nEdges; b++) counts[b] /= n;
  return counts;
}

/**
 * Population Stability Index between two binned distributions:
 * `sum_b (actual_b − expected_b) · ln(actual_b / expected_b)`, each proportion floored at
 * `epsilon` so empty bins stay finite. Rule of thumb: < 0.1 stable, 0.1–0.2 moderate shift,
 * > 0.2 significant shift.
 */
export function psiFromProportions(
  expected: ArrayLike<number>,
  actual: ArrayLike<number>,
  epsilon = PSI_EPSILON,
): number {
  if (expected.length !== actual.length) {
    throw new InvalidInputError(`psi: ${expected.length} reference bins but ${actual.length} recent bins`);
  }
  let sum = 0;
  for (let b = 0; b < expected.length; b++) {
    const e = Math.max(expected[b], epsilon);
    const a = Math.max(actual[b], epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/**
 * Population Stability Index of `recent` values against a reference, over the bins given by
 * `edges` (usually `quantileBinEdges(referenceValues)`). The reference is either its raw values
 * or its precomputed {@link BinnedReference} proportions (`edges.length + 1` of them).
 * About 0 for the same distribution; > 0.2 is commonly read as a significant shift.
 *
 * @throws InvalidInputError for empty inputs, NaN values or a proportions/edges size mismatch.
 */
export function psi(
  reference: ArrayLike<number> | BinnedReference,
  recent: ArrayLike<number>,
  edges: ArrayLike<number>,
  epsilon = PSI_EPSILON,
): number {
  const expected = isBinned(reference) ? reference.proportions : binProportions(reference, edges);
  if (expected.length !== edges.length + 1) {
    throw new InvalidInputError(
      `psi: reference has ${expected.length} bin proportions but edges define ${edges.length + 1} bins`,
    );
  }
  return psiFromProportions(expected, binProportions(recent, edges), epsilon);
}

function isBinned(x: ArrayLike<number> | BinnedReference): x is BinnedReference {
  return typeof x === 'object' && x !== null && 'proportions' in x;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The largest double strictly below finite `v`. */
function nextDown(v: number): number {
  if (v === 0) return -Number.MIN_VALUE;
  f64[0] = v;
  u64[0] = v > 0 ? u64[0] - 1n : u64[0] + 1n;
  return f64[0];
}
