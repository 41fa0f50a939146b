import { InvalidInputError } from './errors';
import { binProportions, psi, psiFromProportions, quantileBinEdges } from './psi';
import { Rng } from './rng';

function normal(n: number, mean: number, sd: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng.nextDouble();
    out[i] = mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
  }
  return out;
}

describe('psi', () => {
  describe(quantileBinEdges.name, () => {
    it('should cut 0..99 into deciles', () => {
      const values = Array.from({ length: 100 }, (_, i) => i);
      expect(Array.from(quantileBinEdges(values, 10))).toEqual([9, 19, 29, 39, 49, 59, 69, 79, 89]);
    });

    it('should give bins of about equal reference mass', () => {
      const ref = normal(10000, 0, 1, 1);
      const p = binProportions(ref, quantileBinEdges(ref, 10));
      expect(p.length).toBe(10);
      for (const v of p) expect(v).toBeCloseTo(0.1, 2);
    });

    it('should merge repeated values into one bin instead of empty ones', () => {
      // 70% zeros, the rest spread out
      const ref = Array.from({ length: 1000 }, (_, i) => (i < 700 ? 0 : i));
      const edges = quantileBinEdges(ref, 10);
      expect(edges[0]).toBe(0);
      for (let i = 1; i < edges.length; i++) expect(edges[i]).toBeGreaterThan(edges[i - 1]);
      const p = binProportions(ref, edges);
      expect(p[0]).toBeCloseTo(0.7, 12);
      for (const v of p) expect(v).toBeGreaterThan(0);
    });

    it('should give a constant reference its own bin with empty bins either side', () => {
      const edges = quantileBinEdges([3, 3, 3, 3], 10);
      expect(edges.length).toBe(2);
      expect(edges[0]).toBeLessThan(3);
      expect(edges[1]).toBe(3);
      expect(Array.from(binProportions([3, 3], edges))).toEqual([0, 1, 0]);
      expect(Array.from(binProportions([2.9999, 3.0001], edges))).toEqual([0.5, 0, 0.5]);
    });

    it('should reject empty input and bad bin counts', () => {
      expect(() => quantileBinEdges([], 10)).toThrow(InvalidInputError);
      expect(() => quantileBinEdges([1, 2], 1)).toThrow(/nBins/);
    });
  });

  describe(psi.name, () => {
    const reference = normal(5000, 10, 2, 2);
    const edges = quantileBinEdges(reference, 10);

    it('should be about 0 for a sample of the same distribution', () => {
      expect(psi(reference, normal(5000, 10, 2, 3), edges)).toBeLessThan(0.02);
      expect(psi(reference, reference, edges)).toBe(0);
    });

    it('should exceed 0.2 for a shifted distribution', () => {
      expect(psi(reference, normal(5000, 11.5, 2, 4), edges)).toBeGreaterThan(0.2);
    });

    it('should exceed 0.2 for a wider distribution with the same mean', () => {
      expect(psi(reference, normal(5000, 10, 4, 5), edges)).toBeGreaterThan(0.2);
    });

    it('should accept precomputed reference proportions', () => {
      const recent = normal(2000, 10.5, 2, 6);
      const binned = { proportions: binProportions(reference, edges) };
      expect(psi(binned, recent, edges)).toBe(psi(reference, recent, edges));
    });

    it('should stay finite when recent values fill a bin the reference left empty', () => {
      const constantEdges = quantileBinEdges([1, 1, 1], 10);
      const value = psi([1, 1, 1], [5, 5, 5], constantEdges);
      expect(Number.isFinite(value)).toBe(true);
      expect(value).toBeGreaterThan(5);
    });

    it('should reject a proportions/edges mismatch', () => {
      expect(() => psi({ proportions: [0.5, 0.5] }, [1], edges)).toThrow(/bin proportions/);
      expect(() => psiFromProportions([1], [0.5, 0.5])).toThrow(InvalidInputError);
    });
  });
});
