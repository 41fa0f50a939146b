import {
  jsonValueProblem,
  MAX_DURATION_MS,
  parseStorableDate,
  PG_INT8_SAFE_MAX,
  TimeWindow,
  timeWindowReason,
  unstorableStringReason,
} from '../../../common/validation/storable';

/** A validated log event in the shape the detection works on (SPEC §4 event, normalised). */
export interface LogEvent {
  /** Client-supplied id (idempotency), when given. */
  id?: string;
  timestamp: Date;
  service: string;
  durationMs?: number;
  statusCode?: number;
  bytes?: number;
  method?: string;
  path?: string;
  /** Every other field of the original object (the seed's nested shape), kept as metadata. */
  metadata: Record<string, unknown>;
  /** `metadata` as JSON, when validation already serialised it (saves doing it again to store it). */
  metadataJson?: string;
}

/** A field-level problem with an input event. */
export interface FieldError {
  field: string;
  reason: string;
}

export type ParseResult = { ok: true; event: LogEvent; tenant?: string; label?: string } | { ok: false; errors: FieldError[] };

export interface ParseOptions {
  /** Largest JSON size of the metadata kept with an event. */
  maxMetadataBytes: number;
  /** Accept `tenant` and `label` fields (the training-dataset format of SPEC §5). */
  datasetFields?: boolean;
  /**
   * The accepted window of event times (live intakes: /ingest, the Loki push). Absent for history
   * (replay, training data), which is still held to the storable range.
   */
  window?: TimeWindow;
}

const SERVICE = /^[A-Za-z0-9_.-]{1,128}$/;
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function path(obj: Record<string, unknown>, keys: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const k of keys) {
    if (!isObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/**
 * Reads a number given either nested (the seed's shape) or flat; both present and different is an
 * error rather than a silent choice.
 */
function numberField(
  raw: Record<string, unknown>,
  nested: readonly string[],
  nestedName: string,
  flat: string,
  errors: FieldError[],
  check: (n: number) => string | undefined,
): number | undefined {
  const a = path(raw, nested);
  const b = raw[flat];
  if (a !== undefined && b !== undefined && a !== b) {
    errors.push({ field: flat, reason: `conflicts with ${nestedName}` });
    return undefined;
  }
  const value = a !== undefined ? a : b;
  const field = a !== undefined ? nestedName : flat;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number') {
    errors.push({ field, reason: 'must be a number' });
    return undefined;
  }
  if (!Number.isFinite(value)) {
    errors.push({ field, reason: 'must be finite' });
    return undefined;
  }
  const problem = check(value);
  if (problem) {
    errors.push({ field, reason: problem });
    return undefined;
  }
  return value;
}

const DURATION_PATH = ['performance', 'duration_ms'] as const;
const STATUS_PATH = ['http', 'response', 'status_code'] as const;
const BYTES_PATH = ['http', 'response', 'bytes'] as const;
const METHOD_PATH = ['http', 'request', 'method'] as const;
const REQUEST_PATH_PATH = ['http', 'request', 'path'] as const;
const checkDuration = (n: number) => (n < 0 ? 'must be >= 0' : n > MAX_DURATION_MS ? `must be at most ${MAX_DURATION_MS} (7 days)` : undefined);
const checkStatus = (n: number) => (Number.isInteger(n) && n >= 100 && n <= 599 ? undefined : 'must be an integer HTTP status (100-599)');
const checkBytes = (n: number) =>
  !Number.isInteger(n) || n < 0 ? 'must be an integer >= 0' : n > PG_INT8_SAFE_MAX ? `must be at most ${PG_INT8_SAFE_MAX}` : undefined;

/**
 * Validates one input item into a {@link LogEvent}, collecting every field-level problem.
 * Accepts the seed's nested shape and the flat `duration_ms` / `status_code` / `bytes`.
 */
export function parseLogEvent(raw: unknown, options: ParseOptions): ParseResult {
  if (!isObject(raw)) return { ok: false, errors: [{ field: '(item)', reason: 'must be a JSON object' }] };
  const errors: FieldError[] = [];

  let timestamp: Date | undefined;
  if (raw.timestamp === undefined || raw.timestamp === null || raw.timestamp === '') {
    errors.push({ field: 'timestamp', reason: 'missing' });
  } else {
    const t = parseStorableDate(raw.timestamp);
    const reason = t.ok ? (options.window ? timeWindowReason(t.date, options.window) : undefined) : t.reason;
    if (reason) errors.push({ field: 'timestamp', reason });
    else if (t.ok) timestamp = t.date;
  }

  let service: string | undefined;
  if (raw.service === undefined || raw.service === null || raw.service === '') {
    errors.push({ field: 'service', reason: 'missing' });
  } else if (typeof raw.service !== 'string' || !SERVICE.test(raw.service)) {
    errors.push({ field: 'service', reason: 'must be 1-128 characters of [A-Za-z0-9_.-]' });
  } else {
    service = raw.service;
  }

  let id: string | undefined;
  if (raw.id !== undefined && raw.id !== null) {
    if (typeof raw.id !== 'string' || !ID.test(raw.id)) errors.push({ field: 'id', reason: 'must be 1-128 characters of [A-Za-z0-9_.:-]' });
    else id = raw.id;
  }

  const durationMs = numberField(raw, DURATION_PATH, 'performance.duration_ms', 'duration_ms', errors, checkDuration);
  const statusCode = numberField(raw, STATUS_PATH, 'http.response.status_code', 'status_code', errors, checkStatus);
  const bytes = numberField(raw, BYTES_PATH, 'http.response.bytes', 'bytes', errors, checkBytes);
  const method = path(raw, METHOD_PATH);
  const reqPath = path(raw, REQUEST_PATH_PATH);

  let tenant: string | undefined;
  let label: string | undefined;
  const metadata: Record<string, unknown> = {};
  for (const k in raw) {
    if (k === 'timestamp' || k === 'service' || k === 'id' || !Object.prototype.hasOwnProperty.call(raw, k)) continue;
    const v = raw[k];
    if (options.datasetFields && k === 'tenant') {
      if (typeof v !== 'string' || !TENANT.test(v)) errors.push({ field: 'tenant', reason: 'must be a tenant id' });
      else tenant = v;
      continue;
    }
    if (options.datasetFields && k === 'label') {
      const reason = v === null ? undefined : typeof v !== 'string' ? 'must be a string' : unstorableStringReason(v);
      if (reason) errors.push({ field: 'label', reason });
      else label = (v as string | null) ?? undefined;
      continue;
    }
    metadata[k] = v;
  }
  // Strings PostgreSQL cannot hold and nesting its jsonb parser refuses are found before
  // serialising (JSON.stringify recurses, so a very deep value must not reach it).
  const unstorable = jsonValueProblem(metadata, '');
  let metadataJson = '';
  if (unstorable) {
    errors.push(unstorable);
  } else {
    metadataJson = JSON.stringify(metadata);
    const metadataBytes = Buffer.byteLength(metadataJson);
    if (metadataBytes > options.maxMetadataBytes) {
      errors.push({ field: '(metadata)', reason: `is ${metadataBytes} bytes, over the limit of ${options.maxMetadataBytes}` });
    }
  }

  if (errors.length || !timestamp || !service) return { ok: false, errors };
  return {
    ok: true,
    tenant,
    label,
    event: {
      id,
      timestamp,
      service,
      durationMs,
      statusCode,
      bytes,
      method: typeof method === 'string' ? method : undefined,
      path: typeof reqPath === 'string' ? reqPath : undefined,
      metadata,
      metadataJson,
    },
  };
}
