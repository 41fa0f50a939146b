/**
 * Seasonal predictor on a fixed grid of phase buckets: `expected = profile[bucket] + offset`.
 * The bucket is the position of the timestamp within the period (UTC); a bucket covers
 * period / buckets of wall time, so the state stays fixed-size whatever the sampling interval.
 *
 * `profile[b]` is an EWMA, across periods, of the values seen in bucket b (a smoothed seasonal
 * naive forecast); `offset` is an EWMA of the recent deviations from the profile, so a level
 * shift is followed within a few points while the profile catches up over a few periods.
 * Unlike additive Holt–Winters, the profile learns the raw values, so the level and the
 * seasonal terms cannot drift against each other.
 */
import { SeriesDetectorError } from './errors';
import { StateReader, StateWriter } from './state-codec';

/** One seasonal predictor (daily or weekly). Not thread-shared; owned by one detector. */
export class SeasonalProfile {
  /** Smoothed value per bucket (32-bit: a profile needs no more, and it halves the state). */
  private readonly season: Float32Array;
  /** One bit per bucket: seen at least once (a bucket predicts from its first visit on). */
  private readonly seen: Uint8Array;
  private level = 0;
  /** Buckets seen at least once. */
  private seenBuckets = 0;

  /**
   * @param periodMs the season length (a day or a week).
   * @param buckets phase buckets per period.
   * @param alpha offset smoothing per point, in (0, 1].
   * @param gamma profile smoothing per visit of a bucket, in (0, 1].
   */
  constructor(
    readonly periodMs: number,
    readonly buckets: number,
    private readonly alpha: number,
    private readonly gamma: number,
  ) {
    if (!(periodMs > 0) || !Number.isInteger(buckets) || buckets < 1) {
      throw new SeriesDetectorError(
        `seasonal profile needs a positive period and bucket count, got ${periodMs} ms, ${buckets}`,
      );
    }
    this.season = new Float32Array(buckets);
    this.seen = new Uint8Array((buckets + 7) >> 3);
  }

  /** Bucket of timestamp `t` (ms since the epoch, UTC). */
  bucket(t: number): number {
    const phase = ((t % this.periodMs) + this.periodMs) % this.periodMs;
    const b = Math.floor((phase / this.periodMs) * this.buckets);
    return b >= this.buckets ? this.buckets - 1 : b;
  }

  /** Expected value at bucket `b`, or NaN when the bucket has not been seen yet. */
  predict(b: number): number {
    return this.isSeen(b) ? this.season[b] + this.level : NaN;
  }

  private isSeen(b: number): boolean {
    return (this.seen[b >> 3] & (1 << (b & 7))) !== 0;
  }

  /** Fraction of the buckets seen at least once. */
  coverage(): number {
    return this.seenBuckets / this.buckets;
  }

  /** Learn `x` observed in bucket `b`. */
  update(b: number, x: number): void {
    if (!this.isSeen(b)) {
      this.season[b] = x;
      this.seen[b >> 3] |= 1 << (b & 7);
      this.seenBuckets++;
      return;
    }
    this.level += this.alpha * (x - this.season[b] - this.level);
    this.season[b] += this.gamma * (x - this.season[b]);
  }

  /** Append the state to `w` (period, bucket count and smoothing are the owner's to restore). */
  writeState(w: StateWriter): void {
    w.number(this.level);
    w.array(this.season);
    w.array(this.seen);
  }

  /**
   * Rebuild from {@link writeState} output.
   * @throws SeriesDetectorError on truncated or inconsistent state.
   */
  static readState(r: StateReader, periodMs: number, buckets: number, alpha: number, gamma: number): SeasonalProfile {
    const p = new SeasonalProfile(periodMs, buckets, alpha, gamma);
    p.level = r.number();
    r.array(p.season);
    r.array(p.seen);
    for (let b = 0; b < p.buckets; b++) if (p.isSeen(b)) p.seenBuckets++;
    return p;
  }
}
