import { InvalidInputError } from './errors';
import { assertFinite, isMatrix, matrix, toMatrix } from './matrix';

describe('matrix', () => {
  describe(toMatrix.name, () => {
    it('should copy rows into one row-major Float64Array', () => {
      const sut = toMatrix([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(sut.rows).toBe(2);
      expect(sut.cols).toBe(3);
      expect(Array.from(sut.data)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('should return a Matrix unchanged', () => {
      const m = matrix(new Float64Array(6), 2, 3);
      expect(toMatrix(m)).toBe(m);
      expect(isMatrix(m)).toBe(true);
      expect(isMatrix([[1]])).toBe(false);
    });

    it('should reject ragged rows, non-arrays and inconsistent shapes', () => {
      expect(() => toMatrix([[1, 2], [3]])).toThrow(/row 1 has 1 values, expected 2/);
      expect(() => toMatrix('x' as unknown as number[][])).toThrow(InvalidInputError);
      expect(() => matrix(new Float64Array(5), 2, 3)).toThrow(/5 values but shape 2x3 needs 6/);
    });

    it('should turn non-numbers into NaN so the finiteness check names them', () => {
      const m = toMatrix([[1, 'a' as unknown as number]]);
      expect(() => assertFinite(m)).toThrow(/NaN at row 0, column 1/);
    });
  });

  describe(assertFinite.name, () => {
    it.each([
      [10, 3, NaN],
      [10, 3, -Infinity],
      [40000, 4, NaN], // above the size where the check switches to a single JS pass
      [40000, 4, Infinity],
      [40001, 3, NaN], // odd length: the unpaired last value
    ])('should name the row and column of a bad value in a %px%p matrix holding %p', (rows, cols, bad) => {
      const data = new Float64Array(rows * cols).fill(1.5);
      const at = rows * cols - 1 - cols; // row rows-2, last column
      data[at] = bad;
      expect(() => assertFinite({ data, rows, cols }, 'X')).toThrow(
        `X contains ${String(bad)} at row ${rows - 2}, column ${cols - 1}`,
      );
      data[at] = 0;
      data[data.length - 1] = bad;
      expect(() => assertFinite({ data, rows, cols })).toThrow(`at row ${rows - 1}, column ${cols - 1}`);
    });

    it('should accept finite values, including -0 and extremes', () => {
      for (const rows of [10, 40000]) {
        const data = new Float64Array(rows * 2).fill(Number.MAX_VALUE);
        data[0] = -0;
        data[1] = -Number.MAX_VALUE;
        expect(() => assertFinite({ data, rows, cols: 2 })).not.toThrow();
      }
    });

    it('should throw the given error type', () => {
      class MyError extends Error {}
      expect(() => assertFinite({ data: Float64Array.of(NaN), rows: 1, cols: 1 }, 'X', MyError)).toThrow(MyError);
    });
  });
});
