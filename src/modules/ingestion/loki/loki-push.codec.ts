import { uncompress } from 'snappyjs';

/** One stream of a Loki push: its labels and entries (timestamp in ns, as a decimal string). */
export interface PushStream {
  labels: Record<string, string>;
  entries: { tsNs: string; line: string }[];
}

/** A push body that cannot be read; the message is what Loki would answer. */
export class LokiPushError extends Error {
  override name = 'LokiPushError';
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses a label set in selector syntax: `{service="api", env="prod"}` (escapes \\ \" \n). */
export function parseLabels(text: string): Record<string, string> {
  const s = text.trim();
  if (!s.startsWith('{') || !s.endsWith('}')) throw new LokiPushError(`invalid labels: ${text}`);
  const out: Record<string, string> = {};
  let i = 1;
  const end = s.length - 1;
  const skipSpace = () => {
    while (i < end && /\s/.test(s[i])) i++;
  };
  skipSpace();
  while (i < end) {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new LokiPushError(`invalid labels: ${text}`);
    const name = s.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new LokiPushError(`invalid label name "${name}"`);
    i = eq + 1;
    skipSpace();
    if (s[i] !== '"') throw new LokiPushError(`invalid labels: ${text}`);
    i++;
    let value = '';
    while (i < end && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < end) {
        const c = s[i + 1];
        value += c === 'n' ? '\n' : c === 't' ? '\t' : c;
        i += 2;
      } else value += s[i++];
    }
    if (s[i] !== '"') throw new LokiPushError(`unterminated label value in ${text}`);
    i++;
    out[name] = value;
    skipSpace();
    if (s[i] === ',') i++;
    skipSpace();
  }
  return out;
}

/** Renders labels in selector syntax, sorted by name. */
export function formatLabels(labels: Record<string, string>): string {
  return (
    '{' +
    Object.keys(labels)
      .sort()
      .map((k) => `${k}=${JSON.stringify(labels[k])}`)
      .join(', ') +
    '}'
  );
}

/** Minimal protobuf wire-format reader: just what Loki's PushRequest needs. */
class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new LokiPushError('truncated protobuf varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 63n) throw new LokiPushError('protobuf varint too long');
    }
  }
  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new LokiPushError('truncated protobuf field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new LokiPushError(`unsupported protobuf wire type ${wire}`);
  }
  /** Calls `field(number, wireType)` per field; the callback reads the value or returns false to skip it. */
  fields(field: (n: number, wire: number) => boolean): void {
    while (!this.done) {
      const key = Number(this.varint());
      const n = key >>> 3;
      const wire = key & 7;
      if (!field(n, wire)) this.skip(wire);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function decodeTimestamp(buf: Uint8Array): string {
  let seconds = 0n;
  let nanos = 0n;
  const r = new Reader(buf);
  r.fields((n, wire) => {
    if (n === 1 && wire === 0) seconds = BigInt.asIntN(64, r.varint());
    else if (n === 2 && wire === 0) nanos = BigInt.asIntN(32, r.varint());
    else return false;
    return true;
  });
  return (seconds * 1_000_000_000n + nanos).toString();
}

/**
 * Decodes a protobuf PushRequest (logproto): streams of {labels string, entries {Timestamp, line}}.
 * Structured metadata and the hash field are ignored.
 */
export function decodePushProtobuf(buf: Uint8Array): PushStream[] {
  const streams: PushStream[] = [];
  const top = new Reader(buf);
  while (!top.done) {
    const key = Number(top.varint());
    if (key >>> 3 !== 1 || (key & 7) !== 2) {
      top.skip(key & 7);
      continue;
    }
    const stream: PushStream = { labels: {}, entries: [] };
    const sr = new Reader(top.bytes());
    while (!sr.done) {
      const k = Number(sr.varint());
      const fn = k >>> 3;
      const wire = k & 7;
      if (fn === 1 && wire === 2) stream.labels = parseLabels(utf8.decode(sr.bytes()));
      else if (fn === 2 && wire === 2) {
        const er = new Reader(sr.bytes());
        let tsNs = '0';
        let line = '';
        while (!er.done) {
          const ek = Number(er.varint());
          if (ek >>> 3 === 1 && (ek & 7) === 2) tsNs = decodeTimestamp(er.bytes());
          else if (ek >>> 3 === 2 && (ek & 7) === 2) line = utf8.decode(er.bytes());
          else er.skip(ek & 7);
        }
        stream.entries.push({ tsNs, line });
      } else sr.skip(wire);
    }
    streams.push(stream);
  }
  return streams;
}

/** Decodes Loki's JSON push body `{"streams":[{"stream":{…},"values":[["<ns>","<line>"(, {…})?]]}]}`. */
export function decodePushJson(body: unknown): PushStream[] {
  const streams = (body as { streams?: unknown })?.streams;
  if (!Array.isArray(streams)) throw new LokiPushError('body must be an object with a "streams" array');
  return streams.map((s, i) => {
    const labels = (s as { stream?: unknown })?.stream;
    const values = (s as { values?: unknown })?.values;
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new LokiPushError(`streams[${i}].stream must be an object`);
    if (!Array.isArray(values)) throw new LokiPushError(`streams[${i}].values must be an array`);
    const out: PushStream = { labels: {}, entries: [] };
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL_NAME.test(k) || typeof v !== 'string') throw new LokiPushError(`streams[${i}].stream: invalid label ${k}`);
      out.labels[k] = v;
    }
    values.forEach((v, j) => {
      if (!Array.isArray(v) || typeof v[0] !== 'string' || !/^\d{1,20}$/.test(v[0]) || typeof v[1] !== 'string') {
        throw new LokiPushError(`streams[${i}].values[${j}] must be ["<unix ns>", "<line>"]`);
      }
      out.entries.push({ tsNs: v[0], line: v[1] });
    });
    return out;
  });
}

/** Snappy block-format decompression with a size cap (a bomb cannot expand past `maxBytes`). */
export function snappyDecode(buf: Buffer, maxBytes: number): Buffer {
  try {
    return uncompress(buf, maxBytes);
  } catch (e) {
    throw new LokiPushError(`body is not snappy-compressed protobuf (${(e as Error).message})`);
  }
}
