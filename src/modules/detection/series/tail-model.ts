/**
 * Streaming estimate of how rare a non-negative statistic is: P(X ≥ x) learned from the
 * statistic's own recent history, with exponential forgetting.
 *
 * Layout: a histogram over log10(x) (fixed bins, plus one bin for x below the lowest edge)
 * holding, per bin, the forgetting-weighted count of the values that fell in it; a value is
 * represented by its bin's geometric middle (16 bins per decade: within ±7.5 %; keeping per-bin
 * sums and sums of squares instead tripled the state for the same NAB scores, 76.12 vs 76.16). Inside the observed range the tail probability is read from the histogram; in the
 * far tail, where the histogram holds only a few points, it is extrapolated with a generalised
 * Pareto distribution fitted to the excesses over a high quantile (peaks over threshold, as in
 * Siffer et al., "Anomaly detection in streams with extreme value theory", KDD 2017). The shape
 * is kept in [0, maxShape]: exponential or heavier tails only, so a value beyond
 * everything seen is very surprising but never impossible.
 *
 * Forgetting uses growing weights (each new point weighs 1/(1 − λ) times the previous one) so
 * an update touches one bin; all bins are rescaled only when the weights grow large.
 */
import { SeriesDetectorError } from './errors';
import { StateReader, StateWriter } from './state-codec';

/** log10 of the lowest bin edge; smaller values (and 0) share bin 0. */
const LOG_LO = -3;
/** Bins per decade. */
const PER_DECADE = 16;
/** Decades covered above LOG_LO; larger values share the top bin. */
const DECADES = 9;
/** Number of bins, bin 0 included. */
export const TAIL_BINS = PER_DECADE * DECADES + 1;
const BIN_WIDTH = 1 / PER_DECADE;
/** Rescale the bins when the weight of a new point passes this. */
const RESCALE_AT = 1e9;
/** Smallest probability reported, so surprise stays finite. */
const MIN_PROBABILITY = 1e-300;

/** Options of {@link TailModel}. */
export interface TailModelOptions {
  /** Points of memory: the weight of a point halves after about 0.7 × memory newer points. */
  readonly memory: number;
  /** Fraction of the weight above the tail threshold (the GPD is fitted above the 1 − tailFraction quantile). */
  readonly tailFraction: number;
  /** The tail threshold keeps at least this much weight above it (in points), for a stable fit on little data. */
  readonly minTailWeight: number;
  /** Largest shape of the fitted tail (0 = exponential; larger = heavier, less surprise far out). */
  readonly maxShape: number;
}

/** Bin of `x` (≥ 0): 0 below 10^LOG_LO, then PER_DECADE bins per decade, the last one open-ended. */
export function tailBin(x: number): number {
  if (!(x >= 10 ** LOG_LO)) return 0;
  const b = 1 + Math.floor((Math.log10(x) - LOG_LO) * PER_DECADE);
  return b >= TAIL_BINS ? TAIL_BINS - 1 : b;
}

/** Lower edge of each bin b ≥ 1 (index b), and of the open top (index TAIL_BINS). */
const EDGES = Float64Array.from({ length: TAIL_BINS + 1 }, (_, b) => 10 ** (LOG_LO + (b - 1) * BIN_WIDTH));

/** Geometric middle of each bin b ≥ 1 (for the open top bin, its lower edge × one bin width). */
const MID = Float64Array.from({ length: TAIL_BINS }, (_, b) => (b === 0 ? 0 : 10 ** (LOG_LO + (b - 0.5) * BIN_WIDTH)));

function binLo(b: number): number {
  return EDGES[b];
}

/**
 * Adaptive tail probability of a non-negative statistic (see the file comment). Deterministic:
 * the same sequence of calls gives the same results, also across {@link writeState}/{@link TailModel.readState}.
 */
export class TailModel {
  // 32-bit: a probability estimate needs no more, and it halves the state.
  private readonly count = new Float32Array(TAIL_BINS);
  /** Weight the next point gets (grows by 1/(1 − λ) per point). */
  private weight = 1;
  /** Sum of `count` (kept with it, so a query does not sum the bins). */
  private total = 0;
  /** Highest bin ever filled: the bins above it are empty, so tail sums start here (not state). */
  private top = 0;
  private readonly growth: number;

  /** @throws SeriesDetectorError on out-of-range options. */
  constructor(private readonly options: TailModelOptions) {
    if (!(options.memory >= 1)) throw new SeriesDetectorError(`tail memory must be ≥ 1, got ${options.memory}`);
    if (!(options.tailFraction > 0 && options.tailFraction < 1)) {
      throw new SeriesDetectorError(`tailFraction must be in (0, 1), got ${options.tailFraction}`);
    }
    this.growth = 1 / (1 - 1 / options.memory);
  }

  /** Add `w` points' worth of weight at each of `values` (a prior before any data). */
  seed(values: ArrayLike<number>, w: number): void {
    for (let i = 0; i < values.length; i++) this.put(values[i], w * this.weight);
  }

  /** Learn one observation `x` ≥ 0 (non-finite values are ignored). */
  add(x: number): void {
    if (!(x >= 0) || x === Infinity) return;
    this.put(x, this.weight);
    this.weight *= this.growth;
    if (this.weight > RESCALE_AT) this.rescale();
  }

  private put(x: number, w: number): void {
    const b = tailBin(x);
    this.count[b] += w;
    this.total += w;
    if (b > this.top) this.top = b;
  }

  private rescale(): void {
    const f = 1 / this.weight;
    for (let b = 0; b < TAIL_BINS; b++) {
      this.count[b] *= f;
    }
    this.weight = 1;
    this.total *= f;
  }

  /** Total weight, in points (the effective sample size, at most about `memory`). */
  effectiveCount(): number {
    return this.total / this.weight;
  }

  /**
   * Estimated P(X ≥ x). Empirical where at least the tail threshold's weight lies above `x`,
   * generalised Pareto beyond it. 1 for x ≤ 0.
   */
  probability(x: number): number {
    if (!(x > 0)) return 1;
    const count = this.count;
    const total = this.total;
    if (!(total > 0)) return 1;
    const want = Math.max(this.options.tailFraction * total, this.options.minTailWeight * this.weight);
    // Tail threshold u: the highest bin edge with at least `want` weight above it; when all the
    // non-zero values weigh less than that (a mostly-zero statistic), the lowest non-empty edge.
    let acc = 0;
    let s1 = 0;
    let s2 = 0;
    let b = this.top;
    let lowest = 0;
    for (; b >= 1; b--) {
      if (count[b] <= 0) continue;
      acc += count[b];
      const m = MID[b];
      s1 += count[b] * m;
      s2 += count[b] * m * m;
      lowest = b;
      if (acc >= want) break;
    }
    if (lowest === 0) return clampP(this.weight / (total + this.weight));
    const u = binLo(lowest);
    if (x <= u) return clampP(this.empiricalAbove(x) / total);
    // Generalised Pareto fitted by the method of moments to the excesses over u.
    const meanX = s1 / acc;
    const mean = Math.max(meanX - u, 1e-9 * u);
    const variance = Math.max(s2 / acc - meanX * meanX, 0);
    let shape = variance > 0 ? 0.5 * (1 - (mean * mean) / variance) : 0;
    if (!(shape > 0)) shape = 0;
    if (shape > this.options.maxShape) shape = this.options.maxShape;
    const scale = mean * (1 - shape);
    const y = (x - u) / scale;
    const sf = shape === 0 ? Math.exp(-y) : Math.pow(1 + shape * y, -1 / shape);
    return clampP((acc / total) * sf);
  }

  /** Weight at or above `x` > 0, the weight of x's own bin spread uniformly over log10 inside it. */
  private empiricalAbove(x: number): number {
    const bx = tailBin(x);
    let acc = 0;
    for (let b = this.top; b > bx; b--) acc += this.count[b];
    if (bx === 0) return acc + this.count[0];
    const frac = bx === TAIL_BINS - 1 ? 0.5 : Math.min(1, Math.max(0, Math.log10(binLo(bx + 1) / x) * PER_DECADE));
    return acc + this.count[bx] * frac;
  }

  /** Surprise of `x`: −log10 P(X ≥ x), 0 for unremarkable values. */
  surprise(x: number): number {
    return -Math.log10(this.probability(x));
  }

  /** Append the state to `w` (the options are not included: the owner restores them). */
  writeState(w: StateWriter): void {
    w.number(this.weight);
    w.number(this.total);
    w.array(this.count);
  }

  /**
   * Rebuild from {@link writeState} output with the same options.
   * @throws SeriesDetectorError on truncated or inconsistent state.
   */
  static readState(r: StateReader, options: TailModelOptions): TailModel {
    const m = new TailModel(options);
    m.weight = r.number();
    m.total = r.number();
    if (!(m.weight > 0) || !(m.total >= 0)) {
      throw new SeriesDetectorError('tail model state: weight must be positive and total non-negative');
    }
    r.array(m.count);
    for (let b = TAIL_BINS - 1; b > 0 && m.top === 0; b--) if (m.count[b] > 0) m.top = b;
    return m;
  }
}

function clampP(p: number): number {
  return p < MIN_PROBABILITY ? MIN_PROBABILITY : p > 1 ? 1 : p;
}
