/** Keys of an ingest-shaped event that are columns, not metadata (see parseLogEvent). */
const NOT_METADATA = new Set(['timestamp', 'service', 'id']);
/** Room kept for the `intake.truncated` note itself. */
const NOTE_RESERVE = 512;
/** A truncated string keeps at least this many characters (the start of a stack trace says the most). */
const MIN_KEEP = 256;
const MARK = '…[truncated]';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function metadataBytes(event: Record<string, unknown>): number {
  let n = 2;
  for (const [k, v] of Object.entries(event)) if (!NOT_METADATA.has(k)) n += Buffer.byteLength(JSON.stringify(k)) + Buffer.byteLength(JSON.stringify(v) ?? '') + 2;
  return n;
}

/** Cuts a string to `keep` UTF-16 units without splitting a surrogate pair, and marks it. */
function cut(s: string, keep: number): string {
  let end = Math.max(0, keep);
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return s.slice(0, end) + MARK;
}

interface Leaf {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  path: string;
  size: number;
}

/** String leaves of the metadata (not the `intake` note), largest first; iterative so depth costs no stack. */
function stringLeaves(event: Record<string, unknown>): Leaf[] {
  const out: Leaf[] = [];
  type Item = { parent: Record<string, unknown> | unknown[]; key: string | number; path: string };
  const stack: Item[] = [];
  for (const k of Object.keys(event)) if (!NOT_METADATA.has(k) && k !== 'intake') stack.push({ parent: event, key: k, path: k });
  while (stack.length) {
    const item = stack.pop()!;
    const v = (item.parent as Record<string | number, unknown>)[item.key];
    if (typeof v === 'string') out.push({ ...item, size: Buffer.byteLength(v) });
    else if (Array.isArray(v)) v.forEach((_x, i) => stack.push({ parent: v, key: i, path: `${item.path}[${i}]` }));
    else if (isObject(v)) for (const k of Object.keys(v)) stack.push({ parent: v, key: k, path: `${item.path}.${k}` });
  }
  return out.sort((a, b) => b.size - a.size);
}

/**
 * Makes an event's metadata fit `maxBytes` of JSON (INGEST_MAX_METADATA_BYTES) by truncating its
 * longest strings (a stack trace, a message), each to no less than 256 characters, largest first,
 * until it fits; if strings alone cannot make room (thousands of small fields), the largest
 * top-level fields are replaced by a note of their size. The event is changed in place; the
 * returned note (undefined when nothing had to change) lists the truncated or dropped fields and
 * the metadata's original size, and is meant for `intake.truncated`. Core fields (timestamp,
 * service, duration, status, bytes, method, path) are numbers or short strings and are never cut.
 */
export function fitMetadata(event: Record<string, unknown>, maxBytes: number): { fields: string[]; dropped?: string[]; metadata_bytes: number } | undefined {
  const original = metadataBytes(event);
  if (original <= maxBytes) return undefined;
  const target = Math.max(0, maxBytes - NOTE_RESERVE);
  const fields: string[] = [];
  let excess = original - target;
  for (const leaf of stringLeaves(event)) {
    if (excess <= 0) break;
    const s = leaf.parent[leaf.key as never] as string;
    if (s.length <= MIN_KEEP) break;
    const keep = Math.max(MIN_KEEP, s.length - excess - MARK.length);
    const next = cut(s, keep);
    (leaf.parent as Record<string | number, unknown>)[leaf.key] = next;
    excess -= leaf.size - Buffer.byteLength(next);
    fields.push(leaf.path);
  }
  const dropped: string[] = [];
  if (metadataBytes(event) > target) {
    const sizes = Object.entries(event)
      .filter(([k]) => !NOT_METADATA.has(k) && k !== 'intake' && !['duration_ms', 'status_code', 'bytes', 'http'].includes(k))
      .map(([k, v]) => ({ k, size: Buffer.byteLength(JSON.stringify(v) ?? '') }))
      .sort((a, b) => b.size - a.size);
    for (const { k, size } of sizes) {
      if (metadataBytes(event) <= target) break;
      event[k] = `[dropped: ${size} bytes]`;
      dropped.push(k);
    }
  }
  return { fields, ...(dropped.length && { dropped }), metadata_bytes: original };
}
