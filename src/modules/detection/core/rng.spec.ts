import { Rng } from './rng';

describe(Rng.name, () => {
  describe('nextUint32', () => {
    it('should repeat the sequence for the same seed and differ for another', () => {
      const a = new Rng(123);
      const sut = new Rng(123);
      const other = new Rng(124);
      const seqA = Array.from({ length: 8 }, () => a.nextUint32());
      expect(Array.from({ length: 8 }, () => sut.nextUint32())).toEqual(seqA);
      expect(Array.from({ length: 8 }, () => other.nextUint32())).not.toEqual(seqA);
    });

    it('should mix the high bits of large seeds', () => {
      const sut = new Rng(2 ** 32 + 5);
      expect(sut.nextUint32()).not.toBe(new Rng(5).nextUint32());
    });

    it('should reject non-integer seeds', () => {
      expect(() => new Rng(1.5)).toThrow(RangeError);
    });
  });

  describe('nextDouble', () => {
    it('should stay in [0, 1) with a mean near 1/2', () => {
      const sut = new Rng(7);
      let sum = 0;
      for (let i = 0; i < 20000; i++) {
        const v = sut.nextDouble();
        expect(v >= 0 && v < 1).toBe(true);
        sum += v;
      }
      expect(sum / 20000).toBeCloseTo(0.5, 1);
    });
  });

  describe('fillDoubles', () => {
    it('should draw exactly what repeated nextDouble calls draw', () => {
      const a = new Rng(2024);
      const sut = new Rng(2024);
      const out = new Float64Array(1000);
      sut.fillDoubles(out, 999);
      for (let i = 0; i < 999; i++) expect(out[i]).toBe(a.nextDouble());
      expect(out[999]).toBe(0);
      // and leaves the generator in the same state
      expect(sut.nextUint32()).toBe(a.nextUint32());
    });
  });

  describe('nextInt', () => {
    it('should cover [0, n) uniformly', () => {
      const sut = new Rng(8);
      const counts = new Array<number>(7).fill(0);
      for (let i = 0; i < 70000; i++) counts[sut.nextInt(7)]++;
      for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    });

    it('should reject bounds outside [1, 2^32]', () => {
      const sut = new Rng(9);
      expect(() => sut.nextInt(0)).toThrow(RangeError);
      expect(() => sut.nextInt(2.5)).toThrow(RangeError);
    });
  });

  describe('uniform', () => {
    it('should stay within [low, high)', () => {
      const sut = new Rng(10);
      for (let i = 0; i < 1000; i++) {
        const v = sut.uniform(-3, 5);
        expect(v >= -3 && v < 5).toBe(true);
      }
    });
  });
});
