import { compressSync } from 'snappy';

/**
 * Loki push bodies written byte by byte, the way the shippers write them: a logproto PushRequest in
 * protobuf (StreamAdapter {labels = 1, entries = 2}, EntryAdapter {timestamp = 1, line = 2,
 * structuredMetadata = 3}), compressed as a snappy block either by the real encoder (npm
 * `snappy`, the C++ library Promtail's Go port mirrors) or with literal elements only (what the
 * field cases do).
 */
export interface WireEntry {
  seconds: bigint | number;
  nanos?: number;
  line: string;
  metadata?: [string, string][];
}

function varint(n: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const bytesField = (field: number, buf: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(buf.length), buf]);
const varintField = (field: number, n: bigint | number) => Buffer.concat([varint(field << 3), varint(n)]);

/** A protobuf PushRequest. */
export function encodePushRequest(streams: { labels: string; entries: WireEntry[] }[]): Buffer {
  return Buffer.concat(
    streams.map((s) =>
      bytesField(
        1,
        Buffer.concat([
          bytesField(1, Buffer.from(s.labels, 'utf8')),
          ...s.entries.map((e) =>
            bytesField(
              2,
              Buffer.concat([
                bytesField(1, Buffer.concat([varintField(1, e.seconds), ...(e.nanos ? [varintField(2, e.nanos)] : [])])),
                bytesField(2, Buffer.from(e.line, 'utf8')),
                ...(e.metadata ?? []).map(([k, v]) => bytesField(3, Buffer.concat([bytesField(1, Buffer.from(k)), bytesField(2, Buffer.from(v))]))),
              ]),
            ),
          ),
        ]),
      ),
    ),
  );
}

/** Snappy block with literal elements of at most 60 bytes (every decoder must take it). */
export function snappyLiteralBlock(raw: Buffer): Buffer {
  const out = [varint(raw.length)];
  for (let i = 0; i < raw.length; i += 60) {
    const chunk = raw.subarray(i, Math.min(raw.length, i + 60));
    out.push(Buffer.from([(chunk.length - 1) << 2]), chunk);
  }
  return Buffer.concat(out);
}

/** Snappy block from the real encoder (literals and back-references). */
export const snappyBlock = (raw: Buffer): Buffer => compressSync(raw);

/** `varint` for tests that forge a snappy preamble. */
export const uvarint = (n: number): Buffer => varint(n);
