/**
 * What PostgreSQL (and our columns) can hold, checked at the edge so a value that passes validation
 * never fails a statement. Every intake (POST /ingest, the Loki push, replay, query parameters,
 * cursors) calls these instead of its own copy. Sources: PostgreSQL 15-18 docs, "Date/Time Types"
 * (timestamptz range), "Numeric Types" (int2/int4/int8 ranges), "JSON Types" (no U+0000 in text or
 * jsonb; jsonb rejects unpaired surrogate escapes); Loki's `reject_old_samples_max_age` and
 * `creation_grace_period` limits for the accepted time window.
 */

/** A field-level problem: the dotted path of the field and why it cannot be taken. */
export interface ValueProblem {
  field: string;
  reason: string;
}

/** Integer column ranges (PostgreSQL "Numeric Types"). */
export const PG_INT2_MAX = 32_767;
export const PG_INT4_MAX = 2_147_483_647;
/**
 * `bigint` holds up to 2^63-1, but a JSON number beyond 2^53-1 is no longer an exact integer in
 * JavaScript, so that is the largest we take for an int8 column.
 */
export const PG_INT8_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/**
 * The instants we store or query: years 0001 to 9999, the range ISO 8601 writes with four digits
 * (PostgreSQL's timestamptz goes from 4713 BC to 294276 AD, JavaScript's Date to ±275760: both
 * contain it).
 */
export const STORABLE_FROM = new Date('0001-01-01T00:00:00.000Z');
export const STORABLE_UNTIL = new Date('9999-12-31T23:59:59.999Z');

/**
 * The longest request duration we take, in ms (7 days). Far beyond any real request, and small
 * enough that sums and percentiles over a minute of them stay finite (a sketch cannot hold 1e308).
 */
export const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;

/** Nesting deeper than this in a stored JSON value (metadata) is refused; PostgreSQL's jsonb parser recurses. */
export const MAX_JSON_DEPTH = 64;

/**
 * A NUL or any surrogate (then looked at closely). A module constant: a regular expression literal
 * inside a function makes a new RegExp object at each call, and this runs for every string and key
 * of every event.
 */
// eslint-disable-next-line no-control-regex
const MAYBE_UNSTORABLE = /[\u0000\ud800-\udfff]/;

/** Why a string cannot be stored in a text or jsonb column, or undefined when it can. */
export function unstorableStringReason(s: string): string | undefined {
  // Fast path: the common case has neither NUL nor any surrogate.
  if (!MAYBE_UNSTORABLE.test(s)) return undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return 'contains a NUL character (U+0000), which cannot be stored';
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return 'contains an unpaired UTF-16 surrogate, which is not valid Unicode';
    }
    if (c >= 0xdc00 && c <= 0xdfff) return 'contains an unpaired UTF-16 surrogate, which is not valid Unicode';
  }
  return undefined;
}

/**
 * Walks a parsed JSON value without recursion (so depth cannot overflow our stack) and reports the
 * first problem that would make PostgreSQL refuse it: a string or key with NUL or an unpaired
 * surrogate, or nesting deeper than `maxDepth`. `field` names the value; the problem's field is
 * the dotted path inside it (array indexes in brackets).
 */
export function jsonValueProblem(value: unknown, field: string, maxDepth = MAX_JSON_DEPTH): ValueProblem | undefined {
  // Almost every value is fine: a first walk that builds no paths says so; only a value with a
  // problem is walked again, naming where.
  if (jsonValueStorable(value, maxDepth)) return undefined;
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: field, depth: 0 }];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      const reason = unstorableStringReason(v);
      if (reason) return { field: path, reason };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) return { field: path, reason: `is nested deeper than ${maxDepth} levels` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]`, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i];
      const keyReason = unstorableStringReason(k);
      const childPath = path ? `${path}.${keyReason ? '(key)' : k}` : k;
      if (keyReason) return { field: childPath, reason: `key ${keyReason}` };
      stack.push({ v: (v as Record<string, unknown>)[k], path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * The explicit stack of {@link jsonValueStorable}, kept between calls (the walk is synchronous, so
 * calls never overlap): every event's metadata is walked, and fresh arrays per call were most of
 * what validation allocated. Emptied (references dropped) after each walk.
 */
const storableValues: unknown[] = [];
const storableDepths: number[] = [];

/** Whether {@link jsonValueProblem} finds nothing, without building the paths it reports. */
function jsonValueStorable(value: unknown, maxDepth: number): boolean {
  const values = storableValues;
  const depths = storableDepths;
  let top = 0;
  let high = 1;
  values[top] = value;
  depths[top++] = 0;
  let ok = true;
  walk: while (top > 0) {
    const v = values[--top];
    const depth = depths[top];
    if (typeof v === 'string') {
      if (unstorableStringReason(v)) {
        ok = false;
        break;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) {
      ok = false;
      break;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        values[top] = v[i];
        depths[top++] = depth + 1;
      }
    } else {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        if (unstorableStringReason(k)) {
          ok = false;
          break walk;
        }
        values[top] = (v as Record<string, unknown>)[k];
        depths[top++] = depth + 1;
      }
    }
    if (top > high) high = top;
  }
  // Drop the references (the values are the request's) and give back a stack a huge value grew.
  if (values.length > 4096) {
    values.length = 0;
    depths.length = 0;
  } else for (let i = 0; i < high; i++) values[i] = undefined;
  return ok;
}

/** Depth of nesting of a parsed JSON value, counted without recursion, stopping once past `limit`. */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length) {
    const { v, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limit) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push({ v: c, depth: depth + 1 });
  }
  return false;
}

/**
 * Whether JSON text nests deeper than `limit`, found by one pass over its bytes (brackets outside
 * strings) before parsing: V8 parses deep nesting slowly (a 1 MB body 500,000 levels deep holds the
 * event loop for most of a second), and nothing we take nests deep.
 */
export function jsonTextDepthExceeds(text: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const b = text[i];
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > limit) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/** Why an instant cannot be stored or queried (outside years 0001-9999, or not a date), or undefined. */
export function unstorableDateReason(d: Date): string | undefined {
  const t = d.getTime();
  if (Number.isNaN(t)) return 'is not a valid date-time';
  if (t < STORABLE_FROM.getTime() || t > STORABLE_UNTIL.getTime()) return 'must be between 0001-01-01 and 9999-12-31';
  return undefined;
}

/** The accepted window of event times, relative to arrival: Loki's old-sample age and creation grace. */
export interface TimeWindow {
  /** Arrival time the window is measured from. */
  now: Date;
  /** Oldest accepted age, in ms. */
  maxAgeMs: number;
  /** How far into the future an event may be dated (clock skew), in ms. */
  futureGraceMs: number;
}

/**
 * Why an event time falls outside the accepted window, in Loki's wording ("timestamp too old: …,
 * oldest acceptable timestamp is: …"), or undefined when it is inside.
 */
export function timeWindowReason(t: Date, w: TimeWindow): string | undefined {
  const oldest = w.now.getTime() - w.maxAgeMs;
  const newest = w.now.getTime() + w.futureGraceMs;
  if (t.getTime() < oldest) {
    return `too old: ${t.toISOString()}, oldest acceptable timestamp is: ${new Date(oldest).toISOString()}`;
  }
  if (t.getTime() > newest) {
    return `too new: ${t.toISOString()}, newest acceptable timestamp is: ${new Date(newest).toISOString()}`;
  }
  return undefined;
}

/** Strict ISO 8601 date-time (four-digit year, optional seconds, fraction and offset). */
export const ISO_8601_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses an ISO 8601 date-time that PostgreSQL can hold.
 * @returns the Date, or the reason it is refused.
 */
export function parseStorableDate(raw: unknown): { ok: true; date: Date } | { ok: false; reason: string } {
  if (typeof raw !== 'string' || !ISO_8601_DATE_TIME.test(raw)) return { ok: false, reason: 'must be an ISO 8601 date-time string' };
  const d = new Date(raw);
  const reason = unstorableDateReason(d);
  return reason ? { ok: false, reason } : { ok: true, date: d };
}
