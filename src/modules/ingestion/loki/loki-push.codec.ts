import { uncompress } from 'snappyjs';

/** One entry of a pushed stream: timestamp in ns (decimal string), the line, structured metadata if any. */
export interface PushEntry {
  tsNs: string;
  line: string;
  metadata?: Record<string, string>;
}

/** One stream we push to Loki (the shipper): its labels and entries. */
export interface PushStream {
  labels: Record<string, string>;
  entries: { tsNs: string; line: string }[];
}

/**
 * One stream of a Loki push received by the intake. `labelText` is the label set as the client wrote it (selector syntax
 * for protobuf, rendered from the object for JSON); `labels` is its parsed form, or undefined with
 * `error` (Loki's wording) when the label set is not acceptable: then every entry of the stream is
 * refused and the other streams are not affected.
 */
export interface DecodedStream {
  labelText: string;
  labels?: Record<string, string>;
  error?: string;
  entries: PushEntry[];
}

/** A push body that cannot be read at all; the message is what Loki would answer (400). */
export class LokiPushError extends Error {
  override name = 'LokiPushError';
}

/** A body whose decompressed size is over the limit, known before expanding it (413). */
export class LokiBodyTooLargeError extends Error {
  override name = 'LokiBodyTooLargeError';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    // Loki's RequestBodyTooLargeErrorMsg.
    super(`request body too large: ${size} bytes, limit: ${limit} bytes`);
  }
}

/** A push holding more entries (or streams) than allowed, found while decoding it (413). */
export class LokiTooManyEntriesError extends Error {
  override name = 'LokiTooManyEntriesError';
  constructor(readonly limit: number) {
    super(`The push holds more than ${limit} entries or streams (INGEST_MAX_ITEMS)`);
  }
}

/** Loki's limits on label sets (`max_label_name_length`, `max_label_value_length`, `max_label_names_per_series` defaults). */
export const LABEL_LIMITS = { nameLength: 1024, valueLength: 2048, namesPerSeries: 15 } as const;

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type LabelCheck = { labels: Record<string, string>; error?: undefined } | { labels?: undefined; error: string };

/**
 * Checks a list of label pairs the way Loki's distributor does, in its order: at least one pair,
 * valid names, no name twice, length limits. The messages are Loki's (pkg/validation/validate.go).
 */
export function checkLabelPairs(pairs: [string, string][], labelText: string): LabelCheck {
  if (!pairs.length) return { error: 'error at least one label pair is required per stream' };
  const labels: Record<string, string> = {};
  for (const [name, value] of pairs) {
    if (!LABEL_NAME.test(name)) return { error: `Error parsing labels '${labelText}' with error: invalid label name "${name}"` };
    if (Object.prototype.hasOwnProperty.call(labels, name)) return { error: `stream '${labelText}' has duplicate label name: '${name}'` };
    if (name.length > LABEL_LIMITS.nameLength) return { error: `stream '${labelText}' has label name too long: '${name}'` };
    if (value.length > LABEL_LIMITS.valueLength) return { error: `stream '${labelText}' has label value too long: '${value}'` };
    labels[name] = value;
  }
  if (pairs.length > LABEL_LIMITS.namesPerSeries) {
    return { error: `entry for stream '${labelText}' has ${pairs.length} label names; limit ${LABEL_LIMITS.namesPerSeries}` };
  }
  return { labels };
}

/**
 * Reads a label set in selector syntax, `{service="api", env="prod"}` (values in double quotes or
 * backquotes, escapes \\ \" \n \t), keeping every pair in order, duplicates included.
 * @throws LokiPushError with the reason when the text is not a selector.
 */
export function readLabelPairs(text: string): [string, string][] {
  const s = text.trim();
  if (!s.startsWith('{') || !s.endsWith('}')) throw new LokiPushError('labels must be written {name="value", ...}');
  const pairs: [string, string][] = [];
  let i = 1;
  const end = s.length - 1;
  const skipSpace = () => {
    while (i < end && /\s/.test(s[i])) i++;
  };
  skipSpace();
  while (i < end) {
    const start = i;
    while (i < end && s[i] !== '=' && !/\s/.test(s[i])) i++;
    const name = s.slice(start, i);
    skipSpace();
    if (s[i] !== '=') throw new LokiPushError(`expected = after label name "${name}"`);
    i++;
    skipSpace();
    const quote = s[i];
    if (quote !== '"' && quote !== '`') throw new LokiPushError(`the value of label "${name}" must be quoted`);
    i++;
    let value = '';
    while (i < end && s[i] !== quote) {
      if (quote === '"' && s[i] === '\\' && i + 1 < end) {
        const c = s[i + 1];
        value += c === 'n' ? '\n' : c === 't' ? '\t' : c;
        i += 2;
      } else value += s[i++];
    }
    if (s[i] !== quote) throw new LokiPushError(`unterminated value of label "${name}"`);
    i++;
    pairs.push([name, value]);
    skipSpace();
    if (i < end) {
      if (s[i] !== ',') throw new LokiPushError(`expected , after label "${name}"`);
      i++;
      skipSpace();
    }
  }
  return pairs;
}

/** Parses and checks one label-set string: the labels, or Loki's error for the stream. */
export function parseStreamLabels(text: string): LabelCheck {
  let pairs: [string, string][];
  try {
    pairs = readLabelPairs(text);
  } catch (e) {
    return { error: `Error parsing labels '${text}' with error: ${(e as Error).message}` };
  }
  return checkLabelPairs(pairs, text);
}

/** Renders labels in selector syntax, sorted by name (Loki's canonical form). */
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
  /** A varint that fits in 2^53 (keys, lengths), read without BigInt: the hot path of decoding. */
  small(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw new LokiPushError('truncated protobuf varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (!(b & 0x80)) return result;
      mul *= 128;
    }
    throw new LokiPushError('protobuf length or key too large');
  }
  bytes(): Uint8Array {
    const len = this.small();
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
    if (this.pos > this.buf.length) throw new LokiPushError('truncated protobuf field');
  }
  /** Calls `field(number, wireType)` per field; the callback reads the value or returns false to skip it. */
  fields(field: (n: number, wire: number) => boolean): void {
    while (!this.done) {
      const key = this.small();
      const n = Math.floor(key / 8);
      const wire = key % 8;
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

function decodeLabelPair(buf: Uint8Array): [string, string] {
  let name = '';
  let value = '';
  const r = new Reader(buf);
  r.fields((n, wire) => {
    if (n === 1 && wire === 2) name = utf8.decode(r.bytes());
    else if (n === 2 && wire === 2) value = utf8.decode(r.bytes());
    else return false;
    return true;
  });
  return [name, value];
}

/**
 * Decodes a protobuf PushRequest (package logproto): `streams = 1` of `StreamAdapter {labels = 1,
 * entries = 2, hash = 3}`, entries `EntryAdapter {timestamp = 1 (google.protobuf.Timestamp), line
 * = 2, structuredMetadata = 3 (LabelPairAdapter {name = 1, value = 2})}`. Label sets are checked per
 * stream (see {@link parseStreamLabels}); the hash is ignored. Stops as soon as the push holds more
 * than `maxItems` entries or streams, so a small body of many tiny entries costs nothing more.
 * @throws LokiPushError when the bytes are not such a message; LokiTooManyEntriesError past `maxItems`.
 */
export function decodePushProtobuf(buf: Uint8Array, maxItems = Number.MAX_SAFE_INTEGER): DecodedStream[] {
  const streams: DecodedStream[] = [];
  let entryCount = 0;
  const top = new Reader(buf);
  top.fields((n, wire) => {
    if (n !== 1 || wire !== 2) return false;
    if (streams.length >= maxItems) throw new LokiTooManyEntriesError(maxItems);
    let labelText = '';
    const entries: PushEntry[] = [];
    const sr = new Reader(top.bytes());
    sr.fields((sn, sw) => {
      if (sn === 1 && sw === 2) labelText = utf8.decode(sr.bytes());
      else if (sn === 2 && sw === 2) {
        if (++entryCount > maxItems) throw new LokiTooManyEntriesError(maxItems);
        entries.push(decodeEntry(sr.bytes()));
      }
      else return false;
      return true;
    });
    const check = parseStreamLabels(labelText);
    streams.push({ labelText, labels: check.labels, error: check.error, entries });
    return true;
  });
  return streams;
}

function decodeEntry(buf: Uint8Array): PushEntry {
  const entry: PushEntry = { tsNs: '0', line: '' };
  const r = new Reader(buf);
  r.fields((n, wire) => {
    if (n === 1 && wire === 2) entry.tsNs = decodeTimestamp(r.bytes());
    else if (n === 2 && wire === 2) entry.line = utf8.decode(r.bytes());
    else if (n === 3 && wire === 2) {
      const [name, value] = decodeLabelPair(r.bytes());
      if (name) (entry.metadata ??= {})[name] = value;
    } else return false;
    return true;
  });
  return entry;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decodes Loki's JSON push body `{"streams":[{"stream":{…},"values":[["<ns>","<line>"(, {…})?]]}]}`.
 * A stream whose labels are not strings with valid names, or whose `values` is not an array, is
 * refused on its own (its `error`); a value that is not `["<ns>", "<line>"]` becomes an entry with
 * an empty timestamp, refused on its own by the intake. `duplicateLabels` (from
 * {@link findDuplicateStreamLabels}) names streams whose JSON object held a label twice, which
 * JSON.parse cannot show.
 * @throws LokiPushError when the body is not an object with a `streams` array; LokiTooManyEntriesError
 *   when it holds more than `maxItems` entries or streams (counted before any is read).
 */
export function decodePushJson(body: unknown, duplicateLabels: Map<number, string> = new Map(), maxItems = Number.MAX_SAFE_INTEGER): DecodedStream[] {
  const streams = isObject(body) ? body.streams : undefined;
  if (!Array.isArray(streams)) throw new LokiPushError('body must be an object with a "streams" array');
  let entryCount = streams.length;
  for (const s of streams) if (isObject(s) && Array.isArray(s.values)) entryCount += s.values.length;
  if (streams.length > maxItems || entryCount - streams.length > maxItems) throw new LokiTooManyEntriesError(maxItems);
  return streams.map((s, i): DecodedStream => {
    const labels = isObject(s) ? s.stream : undefined;
    const values = isObject(s) ? s.values : undefined;
    if (!isObject(labels)) return { labelText: '{}', error: `streams[${i}].stream must be an object of labels`, entries: [] };
    const pairs: [string, string][] = [];
    let nonString: string | undefined;
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string') nonString ??= k;
      pairs.push([k, String(v)]);
    }
    const labelText = formatLabels(Object.fromEntries(pairs));
    const entries: PushEntry[] = [];
    if (Array.isArray(values)) {
      for (const v of values) {
        const ok = Array.isArray(v) && typeof v[0] === 'string' && /^\d{1,20}$/.test(v[0]) && typeof v[1] === 'string';
        const metadata = Array.isArray(v) && isObject(v[2]) ? stringValues(v[2]) : undefined;
        entries.push({ tsNs: ok ? (v[0] as string) : '', line: ok ? (v[1] as string) : '', metadata });
      }
    }
    if (!Array.isArray(values)) return { labelText, error: `streams[${i}].values must be an array of ["<unix ns>", "<line>"]`, entries };
    if (nonString !== undefined) return { labelText, error: `Error parsing labels '${labelText}' with error: the value of label "${nonString}" must be a string`, entries };
    const dup = duplicateLabels.get(i);
    if (dup !== undefined) return { labelText, error: `stream '${labelText}' has duplicate label name: '${dup}'`, entries };
    const check = checkLabelPairs(pairs, labelText);
    return { labelText, labels: check.labels, error: check.error, entries };
  });
}

function stringValues(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/**
 * Finds label names written twice in the `stream` object of a JSON push, which JSON.parse would
 * silently collapse to the last value (Loki keeps both and refuses the stream). One linear pass over
 * the text, tracking only the path `streams[i].stream`; anything else is skipped string by string.
 * Returns stream index → the first duplicated name. Assumes text that JSON.parse accepted.
 */
export function findDuplicateStreamLabels(text: string): Map<number, string> {
  const out = new Map<number, string>();
  type Frame = { kind: 'obj' | 'arr'; key?: string; index: number; keys?: Set<string> };
  const stack: Frame[] = [];
  let pendingKey: string | undefined;
  let i = 0;
  const n = text.length;
  /** Index of the quote closing the string that opens at `open` (a quote after an even run of backslashes). */
  const stringEnd = (open: number): number => {
    let q = text.indexOf('"', open + 1);
    while (q >= 0) {
      let bs = 0;
      for (let k = q - 1; k > open && text.charCodeAt(k) === 0x5c; k--) bs++;
      if (bs % 2 === 0) return q;
      q = text.indexOf('"', q + 1);
    }
    return n;
  };
  const readString = (keep: boolean): string => {
    const end = stringEnd(i);
    const raw = keep ? text.slice(i + 1, end) : '';
    i = end + 1;
    return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
  };
  // Path test: root object → "streams" array → element object → "stream" object.
  const inStreamLabels = () =>
    stack.length === 4 && stack[0].kind === 'obj' && stack[1].kind === 'arr' && stack[1].key === 'streams' && stack[2].kind === 'obj' && stack[3].key === 'stream';
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const top = stack[stack.length - 1];
      const isKey = top?.kind === 'obj' && pendingKey === undefined;
      // Only keys are needed (to follow the path and to compare labels); values are skipped whole.
      const s = readString(isKey);
      if (isKey) {
        pendingKey = s;
        if (inStreamLabels()) {
          const keys = top.keys!;
          if (keys.has(s) && !out.has(stack[1].index)) out.set(stack[1].index, s);
          keys.add(s);
        }
      } else if (top?.kind === 'obj') pendingKey = undefined;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      const parent = stack[stack.length - 1];
      const key = parent?.kind === 'obj' ? pendingKey : undefined;
      pendingKey = undefined;
      stack.push({ kind: c === 0x7b ? 'obj' : 'arr', key, index: 0, keys: c === 0x7b ? new Set() : undefined });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      pendingKey = undefined;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'arr') top.index++;
      else pendingKey = undefined;
    } else if (c !== 0x3a && c > 0x20) {
      // A bare value (number, true, false, null) ends the current key's value.
      while (i < n && !',}]'.includes(text[i])) i++;
      if (stack[stack.length - 1]?.kind === 'obj') pendingKey = undefined;
      continue;
    }
    i++;
  }
  return out;
}

function readUvarint32(buf: Uint8Array): { value: number; length: number } | undefined {
  let value = 0;
  for (let i = 0; i < 5 && i < buf.length; i++) {
    const b = buf[i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) return value > 0xffffffff ? undefined : { value, length: i + 1 };
  }
  return undefined;
}

/**
 * Snappy block-format decompression (the framing Loki, Promtail, Alloy and Vector use), checked
 * before anything is expanded: the declared length (the block's preamble) must be within
 * `maxBytes`, else {@link LokiBodyTooLargeError} (a bomb costs nothing); then one pass over the
 * element tags adds up the length the block really produces, checking every literal against the
 * input and every copy offset against the output so far, and it must equal the declared length
 * (a body declaring 10 MiB and holding 4 bytes is refused, not expanded into zeros). Format:
 * github.com/google/snappy, format_description.txt.
 * @throws LokiBodyTooLargeError (413) or LokiPushError (400).
 */
export function snappyDecode(buf: Uint8Array, maxBytes: number): Buffer {
  const head = readUvarint32(buf);
  if (!head) throw new LokiPushError('snappy: corrupt input (unreadable length preamble)');
  const declared = head.value;
  if (declared > maxBytes) throw new LokiBodyTooLargeError(declared, maxBytes);
  let p = head.length;
  let out = 0;
  const n = buf.length;
  while (p < n) {
    const tag = buf[p];
    const type = tag & 3;
    let len: number;
    if (type === 0) {
      len = tag >>> 2;
      p++;
      if (len >= 60) {
        const extra = len - 59;
        if (p + extra > n) return corrupt(declared, out);
        len = 0;
        for (let k = 0; k < extra; k++) len += buf[p + k] * 2 ** (8 * k);
        p += extra;
      }
      len += 1;
      if (p + len > n) return corrupt(declared, out);
      p += len;
    } else {
      let offset: number;
      if (type === 1) {
        if (p + 2 > n) return corrupt(declared, out);
        len = 4 + ((tag >>> 2) & 7);
        offset = ((tag & 0xe0) << 3) | buf[p + 1];
        p += 2;
      } else if (type === 2) {
        if (p + 3 > n) return corrupt(declared, out);
        len = 1 + (tag >>> 2);
        offset = buf[p + 1] | (buf[p + 2] << 8);
        p += 3;
      } else {
        if (p + 5 > n) return corrupt(declared, out);
        len = 1 + (tag >>> 2);
        offset = buf[p + 1] + buf[p + 2] * 2 ** 8 + buf[p + 3] * 2 ** 16 + buf[p + 4] * 2 ** 24;
        p += 5;
      }
      if (offset === 0 || offset > out) return corrupt(declared, out);
    }
    out += len;
    if (out > declared) return corrupt(declared, out);
  }
  if (out !== declared) return corrupt(declared, out);
  try {
    return uncompress(buf, maxBytes);
  } catch (e) {
    throw new LokiPushError(`snappy: corrupt input (${(e as Error).message})`);
  }
}

function corrupt(declared: number, produced: number): never {
  throw new LokiPushError(`snappy: corrupt input (the block declares ${declared} bytes but its elements do not produce them: ${produced} so far)`);
}
