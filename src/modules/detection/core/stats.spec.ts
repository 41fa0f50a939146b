import { InvalidInputError } from './errors';
import { quantile, quantileSorted, rocAuc, sortedCopy } from './stats';

describe('stats', () => {
  describe(quantile.name, () => {
    it.each([
      // Values from numpy: np.percentile([1, 2, 3, 4], [0, 10, 50, 90, 100])
      [0, 1],
      [0.1, 1.3],
      [0.5, 2.5],
      [0.9, 3.7],
      [1, 4],
    ])('should interpolate linearly like numpy at q=%p', (q, expected) => {
      expect(quantile([4, 1, 3, 2], q)).toBeCloseTo(expected, 12);
    });

    it('should return the only value of a one-element array', () => {
      expect(quantileSorted([7], 0.3)).toBe(7);
    });

    it('should reject empty input, NaN and q outside [0, 1]', () => {
      expect(() => quantile([], 0.5)).toThrow(InvalidInputError);
      expect(() => quantile([1, NaN], 0.5)).toThrow(/NaN at index 1/);
      expect(() => quantile([1, 2], 1.5)).toThrow(/q must be in/);
    });
  });

  describe(sortedCopy.name, () => {
    it('should sort numerically without touching the input', () => {
      const input = [10, 9, 100, -1];
      expect(Array.from(sortedCopy(input))).toEqual([-1, 9, 10, 100]);
      expect(input).toEqual([10, 9, 100, -1]);
    });
  });

  describe(rocAuc.name, () => {
    it('should match sklearn roc_auc_score on its documented example', () => {
      expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    });

    it('should be 1 for a perfect ranking and 0 for a reversed one', () => {
      expect(rocAuc([1, 2, 3, 4], [0, 0, 1, 1])).toBe(1);
      expect(rocAuc([4, 3, 2, 1], [0, 0, 1, 1])).toBe(0);
    });

    it('should count ties between classes as one half (mid-ranks)', () => {
      expect(rocAuc([5, 5, 5, 5], [0, 1, 0, 1])).toBe(0.5);
      // pairs (pos, neg): (2,1) win, (2,2) tie, (3,1) win, (3,2) win → 3.5 / 4
      expect(rocAuc([1, 2, 2, 3], [0, 0, 1, 1])).toBe(0.875);
    });

    it('should accept boolean labels', () => {
      expect(rocAuc([0.2, 0.9], [false, true])).toBe(1);
    });

    it('should equal the brute-force pair count on random data', () => {
      let s = 1;
      const rnd = (): number => (s = (Math.imul(s, 48271) >>> 0) % 2147483647) / 2147483647;
      const scores = Array.from({ length: 300 }, () => Math.round(rnd() * 20));
      const labels = scores.map((v) => (rnd() < 0.2 + v / 40 ? 1 : 0));
      let wins = 0;
      let pairs = 0;
      for (let i = 0; i < scores.length; i++) {
        for (let j = 0; j < scores.length; j++) {
          if (labels[i] === 1 && labels[j] === 0) {
            pairs++;
            wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
          }
        }
      }
      expect(rocAuc(scores, labels)).toBeCloseTo(wins / pairs, 12);
    });

    it('should reject one-class labels, other label values, NaN and length mismatches', () => {
      expect(() => rocAuc([1, 2], [1, 1])).toThrow(/at least one positive and one negative/);
      expect(() => rocAuc([1, 2], [0, 2])).toThrow(/label at index 1 is 2/);
      expect(() => rocAuc([1, NaN], [0, 1])).toThrow(/score at index 1 is NaN/);
      expect(() => rocAuc([1, 2, 3], [0, 1])).toThrow(/3 scores but 2 labels/);
    });
  });
});
