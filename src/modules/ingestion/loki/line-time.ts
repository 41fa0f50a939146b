/**
 * Reading the time a log line states about itself. Accepted: ISO 8601 / RFC 3339 (`T` or a space
 * between date and time, `.` or `,` before the fraction, `Z`, `±hh:mm`, `±hhmm` or no zone = UTC),
 * `yyyy/mm/dd hh:mm:ss` (nginx error log, Go's log package; UTC), the access-log time
 * `dd/Mon/yyyy:hh:mm:ss ±hhmm` (Apache `%t`, nginx `$time_local`), and epoch numbers in seconds,
 * milliseconds, microseconds or nanoseconds, told apart by magnitude (below 1e11 seconds, below 1e14
 * milliseconds, below 1e17 microseconds, else nanoseconds: each unit's range then covers years 1973
 * to 5138, so the bands cannot be confused for any real log). Anything else is undefined: the caller
 * falls back to the entry's own timestamp.
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const SLASHED = /^(\d{4})\/(\d{2})\/(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?$/;
const CLF = /^(\d{1,2})\/([A-Za-z]{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:\s+([+-]\d{4}))?$/;
const EPOCH = /^\d{1,20}(?:\.\d{1,9})?$/;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** Latest instant we take (the end of year 9999, what four-digit ISO years and our columns hold). */
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** 0001-01-01T00:00:00Z (Date.UTC would read year 1 as 1901). */
const MIN_MS = -62_135_596_800_000;

function build(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: string | undefined, offsetMin: number): Date | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, Math.min(s, 59), ms);
  // A day that does not exist (31 April) rolls over: refuse it rather than move the event.
  if (date.getUTCDate() !== d) return undefined;
  const t = date.getTime() - offsetMin * 60_000;
  return t >= MIN_MS && t <= MAX_MS ? new Date(t) : undefined;
}

function offsetMinutes(zone: string | undefined): number {
  if (!zone || zone.toUpperCase() === 'Z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
}

/** Epoch value → Date, the unit told by magnitude (see the module note). */
export function epochToDate(value: number | string): Date | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) && value >= 0 ? String(value) : '') : value.trim();
  if (typeof value === 'number' && /e/i.test(text)) return epochToDate(value.toFixed(3));
  if (!EPOCH.test(text)) return undefined;
  const [int, frac = ''] = text.split('.');
  const n = BigInt(int);
  let ms: number;
  if (n < 100_000_000_000n) ms = Number(n) * 1000 + Math.floor(Number(`0.${frac || '0'}`) * 1000);
  else if (n < 100_000_000_000_000n) ms = Number(n);
  else if (n < 100_000_000_000_000_000n) ms = Number(n / 1000n);
  else ms = Number(n / 1_000_000n);
  return ms <= MAX_MS ? new Date(ms) : undefined;
}

/**
 * The instant a line's time field states, or undefined when it is not one of the accepted forms.
 * @param value a string or a number taken from the line (JSON value, logfmt value, bracketed text)
 */
export function parseLineTime(value: unknown): Date | undefined {
  if (typeof value === 'number') return epochToDate(value);
  if (typeof value !== 'string') return undefined;
  const s = value.trim();
  if (!s || s.length > 64) return undefined;
  if (EPOCH.test(s)) return epochToDate(s);
  let m = ISO.exec(s);
  if (m) return build(+m[1], +m[2], +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), m[7], offsetMinutes(m[8]));
  m = SLASHED.exec(s);
  if (m) return build(+m[1], +m[2], +m[3], +m[4], +m[5], +m[6], m[7], 0);
  m = CLF.exec(s);
  if (m) {
    const month = MONTHS.indexOf(m[2].toLowerCase());
    if (month < 0) return undefined;
    return build(+m[3], month + 1, +m[1], +m[4], +m[5], +m[6], m[7], offsetMinutes(m[8]));
  }
  return undefined;
}

/**
 * A timestamp at the start of a free-text line (`2024-05-01T12:00:00Z ...`, `2024-05-01 12:00:00,123
 * ...`, `2024/05/01 12:00:00 ...`), with the length of text it took, or undefined.
 */
export function leadingTime(line: string): { time: Date; length: number } | undefined {
  const m = /^\[?(\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?)\]?/i.exec(line);
  if (!m) return undefined;
  const time = parseLineTime(m[1].replace(/\s(?=[Z+-])/i, ''));
  return time ? { time, length: m[0].length } : undefined;
}
