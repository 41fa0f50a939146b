/**
 * Compact binary encoding of the series detector's state: a flat little-endian byte string of
 * numbers and typed arrays written in a fixed order, deflated (zlib raw deflate, RFC 1951) and
 * carried as base64 inside the JSON state row. Most of the state is sparse (empty histogram
 * bins, unseen seasonal buckets), which deflate shrinks several-fold.
 */
import { deflateRawSync, inflateRawSync } from 'zlib';
import { SeriesDetectorError } from './errors';

/** Typed arrays the codec writes and reads back in place. */
export type StateArray = Float64Array | Float32Array | Uint8Array;

/** Appends numbers and arrays; {@link StateWriter.finish} returns the deflated base64 text. */
export class StateWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  /** One float64. */
  number(x: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.push(b);
  }

  /** A typed array's bytes (the reader must know its length). */
  array(a: StateArray): void {
    this.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice());
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.byteLength;
  }

  /** The raw bytes (an in-memory snapshot). */
  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  /** Deflated, base64 (for storage). */
  finish(): string {
    return deflateRawSync(this.bytes(), { level: 9 }).toString('base64');
  }
}

/** Reads what a {@link StateWriter} wrote, in the same order. */
export class StateReader {
  private readonly buf: Buffer;
  private pos = 0;

  /**
   * @param text {@link StateWriter.finish} output, or the raw {@link StateWriter.bytes}.
   * @throws SeriesDetectorError when the text is not deflated base64.
   */
  constructor(
    text: unknown,
    private readonly what: string,
  ) {
    if (Buffer.isBuffer(text)) {
      this.buf = text;
      return;
    }
    if (typeof text !== 'string') throw new SeriesDetectorError(`${what}: expected a base64 string`);
    try {
      this.buf = inflateRawSync(Buffer.from(text, 'base64'));
    } catch (e) {
      throw new SeriesDetectorError(`${what}: not a compressed state (${(e as Error).message})`);
    }
  }

  /** One float64. @throws SeriesDetectorError past the end. */
  number(): number {
    this.need(8);
    const x = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return x;
  }

  /** Fill `out` from the next bytes. @throws SeriesDetectorError past the end. */
  array(out: StateArray): void {
    this.need(out.byteLength);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(
      this.buf.subarray(this.pos, this.pos + out.byteLength),
    );
    this.pos += out.byteLength;
  }

  /** @throws SeriesDetectorError when bytes are left over (the state does not match this build). */
  end(): void {
    if (this.pos !== this.buf.byteLength) {
      throw new SeriesDetectorError(`${this.what}: ${this.buf.byteLength - this.pos} bytes left over`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) throw new SeriesDetectorError(`${this.what}: truncated`);
  }
}
