import { InvalidInputError } from './errors';

/** A dense row-major matrix: element (r, c) lives at `data[r * cols + c]`. */
export interface Matrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** What the core accepts as a data set: a {@link Matrix} or, for convenience, an array of rows. */
export type MatrixInput = Matrix | ReadonlyArray<ArrayLike<number>>;

/** True when `x` has the {@link Matrix} shape (as opposed to an array of rows). */
export function isMatrix(x: unknown): x is Matrix {
  return (
    typeof x === 'object' &&
    x !== null &&
    !Array.isArray(x) &&
    (x as Matrix).data instanceof Float64Array &&
    typeof (x as Matrix).rows === 'number' &&
    typeof (x as Matrix).cols === 'number'
  );
}

/**
 * Wrap a flat row-major buffer as a {@link Matrix}, checking that its length is `rows * cols`.
 * The buffer is not copied.
 */
export function matrix(data: Float64Array, rows: number, cols: number): Matrix {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new InvalidInputError(`matrix shape must be non-negative integers, got ${rows}x${cols}`);
  }
  if (data.length !== rows * cols) {
    throw new InvalidInputError(`matrix data has ${data.length} values but shape ${rows}x${cols} needs ${rows * cols}`);
  }
  return { data, rows, cols };
}

/**
 * Normalise a {@link MatrixInput} to a {@link Matrix}. A Matrix is returned as is (shape checked);
 * an array of rows is copied into one Float64Array. Ragged rows are rejected, naming the row.
 * Values are not checked here (see {@link assertFinite}).
 *
 * @param what name of the argument, used in error messages.
 */
export function toMatrix(
  x: MatrixInput,
  what = 'X',
  ErrorType: new (message: string) => Error = InvalidInputError,
): Matrix {
  if (isMatrix(x)) {
    if (
      !Number.isInteger(x.rows) ||
      !Number.isInteger(x.cols) ||
      x.rows < 0 ||
      x.cols < 0 ||
      x.data.length !== x.rows * x.cols
    ) {
      throw new ErrorType(`${what}: matrix data has ${x.data.length} values but shape ${x.rows}x${x.cols}`);
    }
    return x;
  }
  if (!Array.isArray(x)) {
    throw new ErrorType(`${what} must be a Matrix {data, rows, cols} or an array of rows`);
  }
  const rows = x.length;
  if (rows === 0) return { data: new Float64Array(0), rows: 0, cols: 0 };
  const cols = lengthOfRow(x[0], 0, what, ErrorType);
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = x[r];
    const len = lengthOfRow(row, r, what, ErrorType);
    if (len !== cols) {
      throw new ErrorType(`${what}: row ${r} has ${len} values, expected ${cols} (as row 0)`);
    }
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = row[c];
      // Non-numbers become NaN so assertFinite reports them with their position.
      data[base + c] = typeof v === 'number' ? v : NaN;
    }
  }
  return { data, rows, cols };
}

function lengthOfRow(
  row: ArrayLike<number> | undefined,
  r: number,
  what: string,
  ErrorType: new (message: string) => Error,
): number {
  if (row === null || typeof row !== 'object' || typeof row.length !== 'number') {
    throw new ErrorType(`${what}: row ${r} is not an array of numbers`);
  }
  return row.length;
}

/**
 * Throw if any value of `m` is NaN or ±Infinity, naming the first bad row and column.
 * Scores of non-finite input would be meaningless rather than wrong-looking, so they are refused.
 */
export function assertFinite(
  m: Matrix,
  what = 'X',
  ErrorType: new (message: string) => Error = InvalidInputError,
): void {
  const data = m.data;
  const n = data.length;
  if (n < 65536) {
    // Native scans (includes() finds NaN, unlike indexOf): a one-off check of a small batch
    // would otherwise run as unoptimised JavaScript and cost more than scoring it.
    if (!data.includes(NaN) && !data.includes(Infinity) && !data.includes(-Infinity)) return;
  } else {
    // One branch-free pass: v · 0 is ±0 for finite v and NaN otherwise.
    let s0 = 0;
    let s1 = 0;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      s0 += data[i] * 0;
      s1 += data[i + 1] * 0;
    }
    if (i < n) s0 += data[i] * 0;
    if (s0 + s1 === 0) return;
  }
  for (let i = 0; i < n; i++) {
    // `v - v` is 0 for finite v and NaN for NaN/±Infinity: one test for both cases.
    const v = data[i];
    if (v - v !== 0) {
      const r = Math.floor(i / m.cols);
      const c = i - r * m.cols;
      throw new ErrorType(`${what} contains ${String(v)} at row ${r}, column ${c}`);
    }
  }
}
