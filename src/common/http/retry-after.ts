/**
 * Retry-After (RFC 9110 §10.2.3) in milliseconds: delta-seconds or an HTTP date, capped at `maxMs`
 * (a server asking for an hour should not stall a client for an hour). Null when the header is
 * absent or unreadable, so the caller falls back to its own backoff.
 * @param now epoch ms an HTTP date is measured from (a date in the past gives 0).
 */
export function parseRetryAfter(header: string | null | undefined, maxMs: number, now = Date.now()): number | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const v = header.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.min(maxMs, Math.round(Number(v) * 1000));
  // An HTTP date names its day and month; Date.parse alone would take '-3' for a year.
  const at = /[a-z]/i.test(v) ? Date.parse(v) : NaN;
  return Number.isNaN(at) ? null : Math.min(maxMs, Math.max(0, at - now));
}
