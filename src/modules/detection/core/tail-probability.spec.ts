import { expectedNormalMax, logBinomialUpper, logNormalUpper, logPoissonLower, logPoissonUpper, normalQuantile } from './tail-probability';

describe('tail probabilities', () => {
  it('should give the Poisson tails of the issue (0 requests where 10 are expected: p = e^-10 ≈ 4.5e-5)', () => {
    expect(Math.exp(logPoissonLower(0, 10))).toBeCloseTo(4.54e-5, 7);
    // P(X ≥ 20 | mean 10) = 0.003454 (R: ppois(19, 10, lower.tail = FALSE))
    expect(Math.exp(logPoissonUpper(20, 10))).toBeCloseTo(0.003454, 5);
  });

  it('should give exact binomial upper tails (R: pbinom(k - 1, n, p, lower.tail = FALSE))', () => {
    // 4 server errors among 20 requests at a 0.5 % reference share
    expect(Math.exp(logBinomialUpper(4, 20, 0.005))).toBeCloseTo(2.8e-6, 7);
    expect(Math.exp(logBinomialUpper(2, 4, 0.25))).toBeCloseTo(1 - 0.75 ** 4 - 4 * 0.25 * 0.75 ** 3, 10);
    // At or below the mean the tail is not computed: 0 (probability 1).
    expect(logBinomialUpper(1, 4, 0.25)).toBe(0);
    expect(logBinomialUpper(0, 10, 0.1)).toBe(0);
  });

  it('should give the normal upper tail far into the tail', () => {
    expect(Math.exp(logNormalUpper(1.959964))).toBeCloseTo(0.025, 6);
    expect(logNormalUpper(10)).toBeCloseTo(Math.log(7.6199e-24), 3);
  });

  it('should invert the normal distribution (Acklam)', () => {
    for (const p of [1e-9, 1e-6, 0.01, 0.025, 0.3, 0.9, 0.975, 1 - 1e-7]) {
      const z = normalQuantile(p);
      const upper = Math.exp(logNormalUpper(Math.abs(z)));
      expect(z >= 0 ? 1 - upper : upper).toBeCloseTo(p, 6);
    }
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalQuantile(1.5)).toBeNaN();
  });

  it('should approximate the expected maximum of n standard normals (exact values from Harter 1961)', () => {
    expect(expectedNormalMax(1)).toBe(0);
    const exact: [number, number][] = [[2, 0.5642], [5, 1.1630], [10, 1.5388], [20, 1.8675], [100, 2.5076]];
    for (const [n, e] of exact) expect(Math.abs(expectedNormalMax(n) - e) / e).toBeLessThan(n === 2 ? 0.05 : 0.015);
  });
});
