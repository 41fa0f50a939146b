import { parseLineTime } from './line-time';

/**
 * One web-server access-log line, read. Times are milliseconds; absent fields are undefined.
 * `variant` names the layout recognised: `common` or `combined`, with `vhost_` in front when a
 * virtual host leads the line, and `+request_time` (nginx `$request_time`, seconds),
 * `+upstream_time` (`$upstream_response_time`), `+micros` (Apache `%D`), `+millis` (Apache
 * `%{ms}T` or a `ms=` field) when a duration was found after the standard fields.
 */
export interface AccessLogRecord {
  variant: string;
  time?: Date;
  vhost?: string;
  remoteAddr: string;
  remoteUser?: string;
  method?: string;
  path?: string;
  query?: string;
  protocol?: string;
  status: number;
  bytes?: number;
  referer?: string;
  userAgent?: string;
  durationMs?: number;
  upstreamMs?: number;
  /** Fields after the standard ones that were not read as a duration, as written. */
  extra: string[];
}

type Token = { kind: 'bare' | 'quoted' | 'bracketed'; text: string };

/**
 * Splits an access-log line into space-separated tokens, `"quoted"` (Apache escapes `\"` and `\\`,
 * nginx writes `\x22`: both undone) and `[bracketed]`. Undefined when a quote or bracket is not
 * closed.
 */
function tokenize(line: string, maxTokens: number): Token[] | undefined {
  const tokens: Token[] = [];
  let i = 0;
  const n = line.length;
  while (i < n && tokens.length < maxTokens) {
    const c = line[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"') {
      let text = '';
      i++;
      while (i < n && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < n) {
          const next = line[i + 1];
          if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
            text += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
            i += 4;
            continue;
          }
          text += next === '"' || next === '\\' ? next : `\\${next}`;
          i += 2;
          continue;
        }
        text += line[i++];
      }
      if (i >= n) return undefined;
      i++;
      tokens.push({ kind: 'quoted', text });
      continue;
    }
    if (c === '[') {
      const close = line.indexOf(']', i);
      if (close < 0) return undefined;
      tokens.push({ kind: 'bracketed', text: line.slice(i + 1, close) });
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < n && line[j] !== ' ' && line[j] !== '\t') j++;
    tokens.push({ kind: 'bare', text: line.slice(i, j) });
    i = j;
  }
  return tokens;
}

const METHOD = /^[A-Z][A-Z_-]{1,19}$/;
const DASH = (s: string | undefined) => (s === undefined || s === '-' || s === '' ? undefined : s);
const SECONDS = /^\d+\.\d+$/;
const INTEGER = /^\d+$/;

/** Reads a duration in seconds as nginx writes it (`0.123`; a list `0.1, 0.2` or `0.1 : 0.2` for retries: summed). */
function nginxSeconds(text: string): number | undefined {
  const parts = text.split(/\s*[,:]\s*/).filter((p) => p !== '' && p !== '-');
  if (!parts.length || !parts.every((p) => SECONDS.test(p) || INTEGER.test(p))) return undefined;
  return parts.reduce((sum, p) => sum + Number(p), 0) * 1000;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * Reads the fields after the standard ones: durations by name (`rt=`/`request_time=` seconds,
 * `urt=`/`upstream_response_time=` seconds, `ms=`/`duration_ms=`, `us=`/`D=` microseconds) or by
 * position and shape: the first bare number is the request's duration — with a decimal point it is
 * nginx's `$request_time` in seconds, an integer is Apache's `%D` in microseconds — and a second
 * one (or `-`) is nginx's `$upstream_response_time`.
 */
function readExtras(raw: Token[], rec: AccessLogRecord, suffix: string[]): void {
  // nginx writes several upstream times as `0.1, 0.2` or `0.1 : 0.2` (retries, internal redirects): one field.
  const tokens: Token[] = [];
  for (const t of raw) {
    const prev = tokens[tokens.length - 1];
    if (prev?.kind === 'bare' && t.kind === 'bare' && (/[,:]$/.test(prev.text) || t.text === ':' || t.text.startsWith(':'))) prev.text += ` ${t.text}`;
    else tokens.push({ ...t });
  }
  let positional = 0;
  for (const t of tokens) {
    if (t.kind === 'bare') {
      const kv = /^([A-Za-z_]+)=(.*)$/.exec(t.text);
      if (kv) {
        const key = kv[1].toLowerCase();
        const value = kv[2].replace(/^"|"$/g, '');
        if ((key === 'rt' || key === 'request_time' || key === 'req_time') && rec.durationMs === undefined) {
          const ms = nginxSeconds(value);
          if (ms !== undefined) {
            rec.durationMs = round3(ms);
            suffix.push('request_time');
            continue;
          }
        }
        if (key === 'urt' || key === 'upstream_response_time' || key === 'upstream_time') {
          const ms = nginxSeconds(value);
          if (ms !== undefined) {
            rec.upstreamMs = round3(ms);
            suffix.push('upstream_time');
          }
          continue;
        }
        if ((key === 'ms' || key === 'duration_ms') && rec.durationMs === undefined && /^\d+(\.\d+)?$/.test(value)) {
          rec.durationMs = Number(value);
          suffix.push('millis');
          continue;
        }
        if ((key === 'us' || key === 'd' || key === 'duration_us') && rec.durationMs === undefined && INTEGER.test(value)) {
          rec.durationMs = round3(Number(value) / 1000);
          suffix.push('micros');
          continue;
        }
        rec.extra.push(t.text);
        continue;
      }
      if (positional === 0 && rec.durationMs === undefined && (SECONDS.test(t.text) || INTEGER.test(t.text))) {
        positional++;
        if (SECONDS.test(t.text)) {
          rec.durationMs = round3(Number(t.text) * 1000);
          suffix.push('request_time');
        } else {
          rec.durationMs = round3(Number(t.text) / 1000);
          suffix.push('micros');
        }
        continue;
      }
      if (positional === 1 && (t.text === '-' || nginxSeconds(t.text) !== undefined)) {
        positional++;
        const ms = nginxSeconds(t.text);
        if (ms !== undefined) rec.upstreamMs = round3(ms);
        suffix.push('upstream_time');
        continue;
      }
    }
    rec.extra.push(t.kind === 'quoted' ? `"${t.text}"` : t.kind === 'bracketed' ? `[${t.text}]` : t.text);
  }
}

/**
 * Recognises and reads an access-log line: NCSA common (`%h %l %u %t "%r" %>s %b`), combined (plus
 * `"%{Referer}i" "%{User-agent}i"`), either with a leading virtual host (`%v` or `%v:%p`, Apache's
 * `vhost_combined`, nginx `$host` first) and either with durations or other fields appended (nginx
 * `$request_time $upstream_response_time`, Apache `%D`, `rt=… urt=…` key-value tails, a quoted
 * `$http_x_forwarded_for`). Returns undefined when the line is not one of these (the caller tries
 * other formats). Grammar after the Apache mod_log_config and nginx ngx_http_log_module docs;
 * written here because the npm parsers read one fixed format each (no detection of variants).
 */
export function parseAccessLog(line: string): AccessLogRecord | undefined {
  // Cheap rejection first: every variant has a bracketed time and a quoted request early on.
  const open = line.indexOf('[');
  if (open < 0 || open > 300 || line.indexOf('"', open) < 0) return undefined;
  const tokens = tokenize(line, 64);
  if (!tokens) return undefined;
  const at = tokens.findIndex((t) => t.kind === 'bracketed');
  if (at !== 3 && at !== 4) return undefined;
  const lead = tokens.slice(0, at);
  if (!lead.every((t) => t.kind === 'bare')) return undefined;
  const [request, status, bytes] = [tokens[at + 1], tokens[at + 2], tokens[at + 3]];
  if (request?.kind !== 'quoted' || status?.kind !== 'bare' || !/^[1-5]\d\d$/.test(status.text)) return undefined;
  const hasBytes = bytes?.kind === 'bare' && (INTEGER.test(bytes.text) || bytes.text === '-');
  const vhost = at === 4 ? lead[0].text.replace(/:\d+$/, '') : undefined;
  const [host, , user] = at === 4 ? lead.slice(1).map((t) => t.text) : lead.map((t) => t.text);
  const rec: AccessLogRecord = {
    variant: '',
    time: parseLineTime(tokens[at].text),
    vhost: DASH(vhost),
    remoteAddr: host,
    remoteUser: DASH(user),
    status: Number(status.text),
    bytes: hasBytes ? (bytes.text === '-' ? 0 : Number(bytes.text)) : undefined,
    extra: [],
  };
  const req = request.text.split(' ');
  if (req.length >= 2 && METHOD.test(req[0])) {
    rec.method = req[0];
    const target = req[1];
    const q = target.indexOf('?');
    rec.path = q >= 0 ? target.slice(0, q) : target;
    if (q >= 0) rec.query = target.slice(q + 1);
    rec.protocol = req[2];
  }
  let rest = tokens.slice(at + (hasBytes ? 4 : 3));
  const combined = rest.length >= 2 && rest[0].kind === 'quoted' && rest[1].kind === 'quoted';
  if (combined) {
    rec.referer = DASH(rest[0].text);
    rec.userAgent = DASH(rest[1].text);
    rest = rest.slice(2);
  }
  const suffix: string[] = [];
  readExtras(rest, rec, suffix);
  rec.variant = `${at === 4 ? 'vhost_' : ''}${combined ? 'combined' : 'common'}${suffix.map((s) => `+${s}`).join('')}`;
  return rec;
}
