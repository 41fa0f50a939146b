/**
 * Seeded pseudo-random numbers for the detection core.
 *
 * xoshiro128** (Blackman & Vigna) is used because it is fast with 32-bit integer arithmetic,
 * which is what JavaScript engines do well (`Math.imul`, `>>> 0`), and has a 2^128 − 1 period.
 * Its state is filled with splitmix32 so that nearby seeds (0, 1, 2, …) give unrelated streams.
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_MINUS_53 = 1 / 9007199254740992;

/** One splitmix32 step; `state` is advanced by the caller. */
function splitmix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A deterministic 32-bit PRNG (xoshiro128**). The same seed always yields the same sequence,
 * on every platform, because only exact 32-bit integer operations are involved.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * @param seed any safe integer (negative and values above 2^32 are fine: both 32-bit halves
   *   are mixed in). Non-integers are rejected so that `1.5` and `1` do not silently collide.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer, got ${String(seed)}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let st = (lo ^ splitmix32(hi + 0x6a09e667)) >>> 0;
    st = (st + 0x9e3779b9) >>> 0;
    this.s0 = splitmix32(st);
    st = (st + 0x9e3779b9) >>> 0;
    this.s1 = splitmix32(st);
    st = (st + 0x9e3779b9) >>> 0;
    this.s2 = splitmix32(st);
    st = (st + 0x9e3779b9) >>> 0;
    this.s3 = splitmix32(st);
    // The all-zero state is the one fixed point of xoshiro; splitmix32 makes it practically
    // impossible, but the guard costs nothing.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next raw output as an unsigned 32-bit integer in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = s1 ^ n2;
    this.s0 = s0 ^ n3;
    this.s2 = n2 ^ t;
    this.s3 = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (two raw outputs). */
  nextDouble(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) * TWO_POW_MINUS_53;
  }

  /**
   * Fill out[0, count) with uniform doubles in [0, 1), exactly as `count` calls of
   * {@link nextDouble} would. Hot loops draw from such a buffer: one call here is much cheaper
   * than thousands of method calls before the JIT has inlined them.
   */
  fillDoubles(out: Float64Array, count = out.length): void {
    // nextUint32 and nextDouble inlined over local state: a tight loop V8 optimises at once.
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let i = 0; i < count; i++) {
      let x = Math.imul(s1, 5);
      const hi = Math.imul((x << 7) | (x >>> 25), 9) >>> 5;
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      x = Math.imul(s1, 5);
      const lo = Math.imul((x << 7) | (x >>> 25), 9) >>> 6;
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = (hi * 67108864 + lo) * TWO_POW_MINUS_53;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /**
   * Uniform integer in [0, n) for 1 <= n <= 2^32, without modulo bias (Lemire-style rejection on
   * the 32-bit product is awkward in JS, so plain rejection sampling on the top of the range).
   */
  nextInt(n: number): number {
    if (!(n >= 1 && n <= TWO_POW_32) || !Number.isInteger(n)) {
      throw new RangeError(`Rng.nextInt bound must be an integer in [1, 2^32], got ${String(n)}`);
    }
    // Largest multiple of n that fits in 2^32; draws at or above it would bias low values.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let r = this.nextUint32();
    while (r >= limit) r = this.nextUint32();
    return r % n;
  }

  /** Uniform double in [low, high); returns `low` when the interval is empty. */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.nextDouble();
  }
}

/** A standard normal draw from `rng` (Box–Muller, one value per two uniforms). */
export function gaussian(rng: Rng): number {
  const u = Math.max(rng.nextDouble(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
}

/**
 * A Poisson draw of mean `lambda` from `rng`: Knuth's product of uniforms up to 30, the normal
 * approximation (rounded, at least 0) above. 0 for a mean ≤ 0.
 */
export function poisson(rng: Rng, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gaussian(rng)));
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rng.nextDouble();
  while (p > limit) {
    k++;
    p *= rng.nextDouble();
  }
  return k;
}
