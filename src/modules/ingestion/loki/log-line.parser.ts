import logfmt from 'logfmt';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../../common/validation/storable';
import { parseAccessLog } from './access-log.parser';
import { leadingTime, parseLineTime } from './line-time';

// Regular expressions of the per-line readers, made once: a literal inside a function is a new RegExp
// object at every call, and these run for every line of every push.
/** A decimal number. */
const DECIMAL = /^-?\d+(\.\d+)?$/;
/** One number and unit of a Go duration. */
const GO_DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g;
/** Starts with a digit. */
const LEADING_DIGIT = /^\d/;
/** A date or time separator. */
const DATE_SEPARATOR = /[-/:]/;
/** Digits only. */
const DIGITS = /^\d+$/;
/** Brackets and punctuation around a level word. */
const LEVEL_PUNCTUATION = /^[[(<]+|[\])>:,|-]+$/g;
/** A bracketed token, or one ending in a colon. */
const BRACKETED_OR_COLON = /^[[(<].*[\])>]:?$|:$/;
/** Characters a service name cannot hold. */
const NOT_SERVICE_CHARS = /[^A-Za-z0-9_.-]+/g;
/** Punctuation at either end of a service name. */
const SERVICE_EDGE_PUNCTUATION = /^[_.-]+|[_.-]+$/g;
/** An HTTP method word. */
const METHOD_WORD = /^[A-Za-z]{3,10}$/;
/** The method and target of a request line. */
const REQUEST_LINE = /^([A-Z]{3,10}) (\S+)/;
/** The key of a logfmt pair. */
const LOGFMT_PAIR = /(?:^|\s)[A-Za-z_@][\w.@/-]*=/g;
/** A double-quoted string. */
const QUOTED = /"(?:[^"\\]|\\.)*"/g;
/** Line breaks at the end of a line. */
const TRAILING_NEWLINES = /[\r\n]+$/;
/** A run of whitespace. */
const WHITESPACE_RUN = /\s+/;
/** One whitespace character. */
const SPACE_CHAR = /\s/;

/** How a line was read. */
export type LineFormat = 'json' | 'logfmt' | 'access_log' | 'text';

/** What the line parser needs from the stream and entry around the line. */
export interface LineContext {
  labels: Record<string, string>;
  /** The entry's own timestamp (used when the line states none). */
  entryTime: Date;
}

/**
 * A line turned into an event in the shape POST /ingest takes (flat `duration_ms`, `status_code`,
 * `bytes`; `http.request.method/path`; every other field kept as metadata), plus an `intake` object
 * saying how it was read: `format`, the access-log `variant`, `status_from: "level"` when the status
 * was inferred from a log level, `line_time` when the line's own time field could not be read.
 */
export interface ParsedLine {
  format: LineFormat;
  event: Record<string, unknown>;
}

/**
 * Loki's `discover_service_name` label list (limits_config, Loki 3), preceded by our own `service`:
 * the first present names the service of lines that do not name their own.
 */
export const SERVICE_LABELS = [
  'service',
  'service_name',
  'app',
  'application',
  'app_name',
  'name',
  'app_kubernetes_io_name',
  'container',
  'container_name',
  'k8s_container_name',
  'component',
  'workload',
  'job',
  'k8s_job_name',
];
/** The service of lines with neither a service field nor a service label (Loki's and OpenTelemetry's name). */
export const UNKNOWN_SERVICE = 'unknown_service';

const LINE_SERVICE = ['service', 'service_name', 'serviceName', 'svc', 'app', 'application'];
const TIME_KEYS = ['timestamp', '@timestamp', 'time', 'ts', 'datetime', 'date', 't'];
const LEVEL_KEYS = ['level', 'lvl', 'severity', 'log.level', 'levelname', 'loglevel', 'detected_level'];
// Traefik's JSON access log: DownstreamStatus, RequestMethod, RequestPath, DownstreamContentSize, Duration (ns).
// Caddy's: request.method, request.uri, status, size, duration (seconds, see readCore).
const STATUS_KEYS = ['status_code', 'status', 'statusCode', 'http_status', 'response_status', 'res.statusCode', 'response.status', 'response.status_code', 'http.status_code', 'DownstreamStatus'];
const BYTES_KEYS = ['bytes', 'response_size', 'body_bytes_sent', 'bytes_sent', 'resp_bytes', 'responseSize', 'size', 'content_length', 'DownstreamContentSize'];
const METHOD_KEYS = ['method', 'http_method', 'request_method', 'req.method', 'verb', 'http.method', 'request.method', 'RequestMethod'];
const PATH_KEYS = ['path', 'uri', 'url', 'request_uri', 'req.url', 'endpoint', 'route', 'http.path', 'http.url', 'url.path', 'request.uri', 'request.path', 'RequestPath'];
/** Duration fields and the factor to milliseconds of a bare number in them. */
const DURATION_KEYS: [string, number][] = [
  ['duration_ms', 1],
  ['durationMs', 1],
  ['latency_ms', 1],
  ['response_time_ms', 1],
  ['elapsed_ms', 1],
  ['took_ms', 1],
  ['time_ms', 1],
  ['request_duration_ms', 1],
  ['responseTime', 1], // pino-http
  ['duration_us', 0.001],
  ['latency_us', 0.001],
  ['duration_ns', 1e-6],
  ['latency_ns', 1e-6],
  ['request_time', 1000], // nginx's name, seconds
  ['duration_s', 1000],
  ['duration_sec', 1000],
  ['duration_seconds', 1000],
  ['latency_s', 1000],
  ['elapsed_s', 1000],
  ['request_duration_seconds', 1000],
  // Generic names: a bare number is taken as milliseconds; a value with a unit ("1.5s") says its own.
  ['duration', 1],
  ['latency', 1],
  ['elapsed', 1],
  ['took', 1],
  ['response_time', 1],
  ['time_taken', 1],
  ['Duration', 1e-6], // Traefik: nanoseconds
];
/** Keys of the ingest shape that have a meaning there; a non-JSON line's own fields of these names are kept as `line_<name>`. */
const RESERVED = new Set(['timestamp', 'service', 'id', 'http', 'performance', 'duration_ms', 'status_code', 'bytes', 'intake', 'message']);

const ERROR_LEVEL = /^(err|error|fatal|panic|crit|critical|alert|emerg|emergency|severe|dpanic)$/i;
const TEXT_LEVEL = /^(FATAL|PANIC|CRIT(?:ICAL)?|ERR(?:OR)?|ALERT|EMERG(?:ENCY)?|SEVERE|WARN(?:ING)?|INFO|NOTICE|DEBUG|TRACE)$/;
const TEXT_LEVEL_ANY_CASE = /^(fatal|panic|crit(?:ical)?|err(?:or)?|alert|emerg(?:ency)?|severe|warn(?:ing)?|info|notice|debug|trace)$/i;
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Epoch values for a time field below this are not taken as the event's time (a `time: 12` is not 1970). */
const EPOCH_FLOOR_MS = Date.UTC(2000, 0, 1);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const PATHS = new Map<string, string[]>();

/** A value by key, where a dotted key also looks one or two objects deep (`res.statusCode`). */
function lookup(src: Record<string, unknown>, key: string): unknown {
  const own = src[key];
  if (own !== undefined && Object.prototype.hasOwnProperty.call(src, key)) return own;
  let parts = PATHS.get(key);
  if (!parts) PATHS.set(key, (parts = key.split('.')));
  if (parts.length === 1) return undefined;
  let cur: unknown = src;
  for (const part of parts) {
    if (!isObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function first<T>(src: Record<string, unknown>, keys: string[], read: (v: unknown, key: string) => T | undefined): { value: T; key: string } | undefined {
  for (const key of keys) {
    const v = lookup(src, key);
    if (v === undefined || v === null || v === '') continue;
    const value = read(v, key);
    if (value !== undefined) return { value, key };
  }
  return undefined;
}

/** A number from a JSON number or a decimal string; undefined otherwise. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && DECIMAL.test(v.trim())) return Number(v);
  return undefined;
}

const toStatus = (v: unknown) => {
  const n = toNumber(v);
  return n !== undefined && Number.isInteger(n) && n >= 100 && n <= 599 ? n : undefined;
};
const toBytes = (v: unknown) => {
  const n = toNumber(v);
  return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
};
const toText = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * A duration in milliseconds: a number (times `factor`), a decimal string (the same), or a Go
 * duration string with units (`1.5ms`, `2s`, `1m30s`, `250µs`). Negative or unreadable: undefined.
 */
export function toDurationMs(v: unknown, factor = 1): number | undefined {
  const n = toNumber(v);
  if (n !== undefined) return n >= 0 ? n * factor : undefined;
  if (typeof v !== 'string' || !GO_DURATION.test(v.trim())) return undefined;
  let ms = 0;
  for (const m of v.trim().matchAll(GO_DURATION_PART)) ms += Number(m[1]) * GO_UNIT_MS[m[2]];
  return ms;
}

/** The time a field states, when it is a real event time (ISO, or an epoch after 2000). */
function toTime(v: unknown): Date | undefined {
  const t = parseLineTime(v);
  if (!t) return undefined;
  const epoch = typeof v === 'number' || (typeof v === 'string' && LEADING_DIGIT.test(v.trim()) && !DATE_SEPARATOR.test(v));
  return epoch && t.getTime() < EPOCH_FLOOR_MS ? undefined : t;
}

/** Whether a level value names an error (`error`, `fatal`, `critical`, …, or pino's 50/60). */
export function isErrorLevel(level: unknown): boolean {
  if (typeof level === 'number') return level >= 50 && level <= 60;
  if (typeof level !== 'string') return false;
  const s = level.trim();
  return ERROR_LEVEL.test(s) || (DIGITS.test(s) && Number(s) >= 50 && Number(s) <= 60);
}

/**
 * A level written near the start of a free-text line: an upper-case level word among the first
 * tokens (`ERROR`, `WARN`), or any case when bracketed or followed by a colon (`[error]`, `error:`).
 */
export function textLevel(text: string): string | undefined {
  const tokens = text.slice(0, 200).split(WHITESPACE_RUN).slice(0, 8);
  for (const raw of tokens) {
    const bare = raw.replace(LEVEL_PUNCTUATION, '');
    if (TEXT_LEVEL.test(bare)) return bare.toLowerCase();
    if (BRACKETED_OR_COLON.test(raw) && TEXT_LEVEL_ANY_CASE.test(bare)) return bare.toLowerCase();
  }
  return undefined;
}

/** Turns a label value or line field into a service name ([A-Za-z0-9_.-], 1-128), or undefined. */
export function toServiceName(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v
    .replace(NOT_SERVICE_CHARS, '_')
    .replace(SERVICE_EDGE_PUNCTUATION, '')
    .slice(0, 128);
  return s && s !== 'undefined' && s !== 'null' ? s : undefined;
}

/** What a stream's labels say about its lines, worked out once per label set (a push repeats it per entry). */
interface LabelFacts {
  service?: string;
  status?: number;
  level?: string;
}
const LABEL_FACTS = new WeakMap<Record<string, string>, LabelFacts>();

function labelFacts(labels: Record<string, string>): LabelFacts {
  let facts = LABEL_FACTS.get(labels);
  if (!facts) {
    facts = {
      service: serviceFromLabels(labels),
      status: first(labels, ['status_code', 'status', 'http_status'], toStatus)?.value,
      level: first(labels, LEVEL_KEYS, toText)?.value,
    };
    LABEL_FACTS.set(labels, facts);
  }
  return facts;
}

/** The service named by a stream's labels (see {@link SERVICE_LABELS}), if any. */
export function serviceFromLabels(labels: Record<string, string>): string | undefined {
  for (const l of SERVICE_LABELS) {
    const s = toServiceName(labels[l]);
    if (s) return s;
  }
  return undefined;
}

/** The `path` of a URL or request target (scheme and host dropped, query kept apart). */
function splitTarget(target: string): { path: string; query?: string } {
  let t = target;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(t);
  if (scheme) t = t.slice(scheme[0].length) || '/';
  const q = t.indexOf('?');
  return q >= 0 ? { path: t.slice(0, q), query: t.slice(q + 1) } : { path: t };
}

/** Core request fields found in a record of fields (a JSON object or a logfmt line). */
interface Core {
  service?: string;
  time?: Date;
  badTime?: unknown;
  durationMs?: number;
  status?: number;
  bytes?: number;
  method?: string;
  path?: string;
  query?: string;
  level?: unknown;
}

function readCore(src: Record<string, unknown>): Core {
  const core: Core = {};
  core.service = first(src, LINE_SERVICE, toServiceName)?.value;
  for (const key of TIME_KEYS) {
    const v = lookup(src, key);
    if (v === undefined || v === null || v === '') continue;
    const t = toTime(v);
    if (t) {
      core.time = t;
      core.badTime = undefined;
      break;
    }
    core.badTime ??= v;
  }
  // Caddy (zap) writes its access log's `duration` in seconds.
  const seconds = typeof src.logger === 'string' && src.logger.startsWith('http.log.access');
  for (const [key, factor] of DURATION_KEYS) {
    const v = lookup(src, key);
    if (v === undefined || v === null || v === '') continue;
    const ms = toDurationMs(v, seconds && key === 'duration' ? 1000 : factor);
    if (ms !== undefined) {
      core.durationMs = Math.round(ms * 1000) / 1000;
      break;
    }
  }
  core.status = first(src, STATUS_KEYS, toStatus)?.value;
  core.bytes = first(src, BYTES_KEYS, toBytes)?.value;
  core.method = first(src, METHOD_KEYS, (v) => (typeof v === 'string' && METHOD_WORD.test(v) ? v.toUpperCase() : undefined))?.value;
  const target = first(src, PATH_KEYS, toText)?.value;
  if (target) Object.assign(core, splitTarget(target));
  const request = toText(src.request);
  if (request && (!core.method || !core.path)) {
    const m = REQUEST_LINE.exec(request);
    if (m) {
      core.method ??= m[1];
      if (!core.path) Object.assign(core, splitTarget(m[2]));
    }
  }
  core.level = first(src, LEVEL_KEYS, (v) => (typeof v === 'string' || typeof v === 'number' ? v : undefined))?.value;
  return core;
}

/** A logfmt line has at least two `key=value` pairs and most of its words are pairs. */
function looksLikeLogfmt(line: string): boolean {
  const pairs = line.match(LOGFMT_PAIR)?.length ?? 0;
  if (pairs < 2) return false;
  // Words outside quotes that are not pairs: few in logfmt, many in prose with an "a=b" in it.
  const words = line.replace(QUOTED, '""').split(WHITESPACE_RUN).filter(Boolean).length;
  return pairs * 2 >= words;
}

/** A JSON object at the end of a text line (`message {"k":1}`, winston-loki's default line), with the text before it. */
function trailingJson(line: string): { text: string; fields: Record<string, unknown> } | undefined {
  if (!line.endsWith('}')) return undefined;
  let from = line.indexOf('{');
  for (let tries = 0; from >= 0 && tries < 8; tries++) {
    if (from === 0 || SPACE_CHAR.test(line[from - 1])) {
      try {
        const v = JSON.parse(line.slice(from));
        if (isObject(v) && !jsonDepthExceeds(v, MAX_JSON_DEPTH)) return { text: line.slice(0, from).trim(), fields: v };
      } catch {
        // not this brace: try the next one
      }
    }
    from = line.indexOf('{', from + 1);
  }
  return undefined;
}

/**
 * Reads one log line into an event, detecting its format per line: a JSON object (as POST /ingest
 * takes it, or any JSON log such as pino's, or a Docker/Fluent Bit wrapper whose `log` holds the
 * real line); a web-server access log (see {@link parseAccessLog}); logfmt (parsed by the `logfmt`
 * package); otherwise free text, kept as `message` (with a trailing JSON object's fields if it has
 * one). Service, time, duration, status, bytes, method and path come from the line's own fields
 * under their usual names, else from the stream labels (service; status or level); the level of a
 * line without status gives status 500 when it is an error level, so that errors count in the
 * service's error series. Missing fields stay missing. Never throws.
 */
export function parseLogLine(line: string, ctx: LineContext): ParsedLine {
  const text = line.replace(TRAILING_NEWLINES, '');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch {
      v = undefined;
    }
    // Nesting deeper than storage takes is kept as text rather than refused.
    if (isObject(v) && !jsonDepthExceeds(v, MAX_JSON_DEPTH)) return fromJson(v, ctx);
  }
  const access = parseAccessLog(trimmed);
  if (access) {
    const event: Record<string, unknown> = {
      remote_addr: access.remoteAddr,
      ...(access.remoteUser !== undefined && { remote_user: access.remoteUser }),
      ...(access.vhost !== undefined && { vhost: access.vhost }),
      ...(access.query !== undefined && { query: access.query }),
      ...(access.protocol !== undefined && { protocol: access.protocol }),
      ...(access.referer !== undefined && { referer: access.referer }),
      ...(access.userAgent !== undefined && { user_agent: access.userAgent }),
      ...(access.upstreamMs !== undefined && { upstream_response_time_ms: access.upstreamMs }),
      ...(access.extra.length && { extra: access.extra }),
    };
    const core: Core = {
      service: undefined,
      time: access.time,
      durationMs: access.durationMs,
      status: access.status,
      bytes: access.bytes,
      method: access.method,
      path: access.path,
    };
    return finish('access_log', event, core, ctx, { variant: access.variant }, access.vhost);
  }
  if (looksLikeLogfmt(trimmed)) {
    const parsed = logfmt.parse(trimmed);
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(parsed)) if (k !== '__proto__') fields[k] = v;
    return finish('logfmt', renameReserved(fields), readCore(fields), ctx);
  }
  const tail = trailingJson(trimmed);
  const message = tail ? tail.text : trimmed;
  const lead = leadingTime(message);
  const core: Core = tail ? readCore(tail.fields) : {};
  if (!core.time && lead) core.time = lead.time;
  core.level ??= textLevel(lead ? message.slice(lead.length) : message);
  const event = { ...(tail ? renameReserved(tail.fields) : {}), message };
  return finish('text', event, core, ctx);
}

function renameReserved(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[RESERVED.has(k) ? `line_${k}` : k] = v;
  return out;
}

/** A JSON line: the object keeps its shape; what is missing is filled in from aliases and labels. */
function fromJson(obj: Record<string, unknown>, ctx: LineContext): ParsedLine {
  const core = readCore(obj);
  // A shipper's envelope around the real line: Docker json-file and Fluent Bit's tail record put it
  // in `log`, Vector's JSON codec in `message`. Read when the object has no request fields of its
  // own; a `message` only when it holds a structured line (a JSON logger's plain message stays
  // metadata). The envelope's time stands in for the entry's when the inner line states none.
  const own = core.durationMs !== undefined || core.status !== undefined || core.method !== undefined || core.path !== undefined || obj.performance !== undefined || obj.http !== undefined;
  for (const key of own ? [] : ['log', 'message']) {
    const text = obj[key];
    if (typeof text !== 'string') continue;
    const inner = parseLogLine(text, { ...ctx, entryTime: core.time ?? ctx.entryTime });
    if (key === 'message' && inner.format === 'text') continue;
    const wrapper: Record<string, unknown> = { ...obj };
    delete wrapper[key];
    const event = { ...renameReserved(wrapper), ...inner.event };
    (event.intake as Record<string, unknown>).wrapper = key;
    return { format: inner.format, event };
  }
  const event: Record<string, unknown> = { ...obj };
  // Fields the ingest shape reads keep their place when the line has them (nested or flat), as
  // numbers when they were written as decimal strings.
  const nestedDuration = lookup(obj, 'performance.duration_ms');
  const nestedStatus = lookup(obj, 'http.response.status_code');
  const nestedBytes = lookup(obj, 'http.response.bytes');
  for (const key of ['duration_ms', 'status_code', 'bytes']) {
    const n = toNumber(event[key]);
    if (typeof event[key] === 'string' && n !== undefined) event[key] = n;
  }
  if (event.duration_ms !== undefined || nestedDuration !== undefined) core.durationMs = undefined;
  if (event.status_code !== undefined || nestedStatus !== undefined) core.status = toStatus(event.status_code ?? nestedStatus) ?? -1;
  if (event.bytes !== undefined || nestedBytes !== undefined) core.bytes = undefined;
  const method = lookup(obj, 'http.request.method');
  const path = lookup(obj, 'http.request.path');
  if (method !== undefined) core.method = undefined;
  if (path !== undefined) core.path = undefined;
  if (event.id !== undefined) {
    event.line_id = event.id;
    delete event.id;
  }
  return finish('json', event, core, ctx);
}

/**
 * Completes an event: time (the line's, else the entry's), service (the line's, else the labels',
 * else `unknown_service`), the core fields in the ingest shape, status from labels or the level.
 * A core status of -1 means "the line has its own, leave it".
 */
function finish(format: LineFormat, event: Record<string, unknown>, core: Core, ctx: LineContext, extra: Record<string, unknown> = {}, fallbackService?: string): ParsedLine {
  const intake: Record<string, unknown> = { format, ...extra };
  event.timestamp = (core.time ?? ctx.entryTime).toISOString();
  if (!core.time && core.badTime !== undefined) intake.line_time = core.badTime;
  const facts = labelFacts(ctx.labels);
  event.service = core.service ?? facts.service ?? toServiceName(fallbackService) ?? UNKNOWN_SERVICE;
  if (core.durationMs !== undefined) event.duration_ms = core.durationMs;
  if (core.bytes !== undefined) event.bytes = core.bytes;
  let status = core.status;
  if (status === undefined) {
    status = facts.status;
    if (status !== undefined) intake.status_from = 'label';
  }
  if (status === undefined) {
    const level = core.level ?? facts.level;
    if (isErrorLevel(level)) {
      status = 500;
      intake.status_from = 'level';
    }
  }
  if (status !== undefined && status !== -1) event.status_code = status;
  if (core.method !== undefined || core.path !== undefined) {
    const http = isObject(event.http) ? { ...event.http } : {};
    if (event.http !== undefined && !isObject(event.http)) event.line_http = event.http;
    const request = isObject(http.request) ? { ...http.request } : {};
    if (core.method !== undefined) request.method = core.method;
    if (core.path !== undefined) request.path = core.path;
    if (core.query !== undefined && format !== 'access_log' && request.query === undefined) request.query = core.query;
    http.request = request;
    event.http = http;
  }
  event.intake = intake;
  return { format, event };
}
