import { InvalidInputError } from './errors';

/** Copy `values` into a new ascending Float64Array, rejecting NaN (it has no place in an order). */
export function sortedCopy(values: ArrayLike<number>, what = 'values'): Float64Array {
  const out = Float64Array.from(values);
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i])) throw new InvalidInputError(`${what} contains NaN at index ${i}`);
  }
  return out.sort();
}

/**
 * Quantile `q` in [0, 1] of an ascending array, linear interpolation between order statistics
 * (numpy's default `method='linear'`, so `np.percentile(x, 100 * q)` gives the same value).
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new InvalidInputError('quantile of an empty array');
  if (!(q >= 0 && q <= 1)) throw new InvalidInputError(`quantile q must be in [0, 1], got ${q}`);
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  // numpy's `_lerp` form: exact at both ends and monotone in q.
  return frac >= 0.5 ? b - (b - a) * (1 - frac) : a + (b - a) * frac;
}

/** Quantile `q` in [0, 1] of unsorted `values` (linear interpolation, numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(sortedCopy(values), q);
}

/**
 * Area under the ROC curve of `scores` (higher = more likely positive) against binary `labels`
 * (1 or true = positive, 0 or false = negative). Ties between a positive and a negative count
 * 1/2, which is the mid-rank Mann–Whitney statistic and equals sklearn's `roc_auc_score`.
 *
 * O(n log n): positives and negatives are sorted separately with the native numeric sort and
 * merged, which is much faster than sorting an index array with a comparator.
 *
 * @throws InvalidInputError on length mismatch, NaN scores, labels other than 0/1, or when one
 *   class is absent (the AUC is undefined then).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number> | ArrayLike<boolean>): number {
  const n = scores.length;
  if (labels.length !== n) {
    throw new InvalidInputError(`rocAuc: ${n} scores but ${labels.length} labels`);
  }
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (l === 1 || l === true) nPos++;
    else if (l !== 0 && l !== false) {
      throw new InvalidInputError(`rocAuc: label at index ${i} is ${String(l)}, expected 0 or 1`);
    }
    if (Number.isNaN(scores[i])) throw new InvalidInputError(`rocAuc: score at index ${i} is NaN`);
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) {
    throw new InvalidInputError('rocAuc: needs at least one positive and one negative label');
  }
  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    const l = labels[i];
    if (l === 1 || l === true) pos[p++] = scores[i];
    else neg[q++] = scores[i];
  }
  pos.sort();
  neg.sort();
  let lt = 0; // negatives strictly below the current positive
  let le = 0; // negatives at or below it
  let sum = 0;
  for (let i = 0; i < nPos; i++) {
    const s = pos[i];
    while (lt < nNeg && neg[lt] < s) lt++;
    if (le < lt) le = lt;
    while (le < nNeg && neg[le] <= s) le++;
    sum += lt + 0.5 * (le - lt);
  }
  return sum / nPos / nNeg;
}
