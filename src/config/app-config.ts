import { readFileSync, existsSync } from 'fs';
import { resolve } from 'path';
import { parse as parseDotenv } from 'dotenv';

/** Raised when configuration is invalid; `problems` names each variable and why. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; reason: string }[]) {
    super(
      'Invalid configuration:\n' + problems.map((p) => `  - ${p.variable}: ${p.reason}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

export type Environment = 'development' | 'staging' | 'production' | 'test';
export type StoreBackend = 'postgres' | 'memory';
export type AlertSeverity = 'info' | 'warning' | 'critical';
export type AlertDirection = 'slower' | 'faster' | 'both';

type Source = Record<string, string | undefined>;

/**
 * Reads one variable through a parser; a parser returns the value or throws a string reason.
 * Collecting every problem (rather than stopping at the first) lets an operator fix a bad
 * deployment in one go.
 */
class Reader {
  readonly problems: { variable: string; reason: string }[] = [];
  readonly seen = new Set<string>();
  constructor(private readonly src: Source) {}

  raw(name: string): string | undefined {
    this.seen.add(name);
    const v = this.src[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  get<T>(name: string, fallback: T, parse: (raw: string) => T): T {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    try {
      return parse(raw);
    } catch (e) {
      this.problems.push({ variable: name, reason: e instanceof Error ? e.message : String(e) });
      return fallback;
    }
  }

  fail(variable: string, reason: string): void {
    this.problems.push({ variable, reason });
  }
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (raw: string): number => {
  if (!/^-?\d+$/.test(raw)) throw new Error(`"${raw}" is not an integer`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`${n} is out of range [${min}, ${max}]`);
  return n;
};
const num = (min: number, max: number) => (raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`"${raw}" is not a number`);
  if (n < min || n > max) throw new Error(`${n} is out of range [${min}, ${max}]`);
  return n;
};
const bool = (raw: string): boolean => {
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new Error(`"${raw}" is not a boolean (use true or false)`);
};
/** Express's `trust proxy`: true/false, a hop count, or a comma-separated list of addresses/subnets. */
const trustProxy = (raw: string): boolean | number | string => {
  const v = raw.trim().toLowerCase();
  if (['true', 'false'].includes(v)) return v === 'true';
  if (/^\d+$/.test(v)) return Number(v);
  if (/^[\w.:/, -]+$/.test(v)) return raw.trim();
  throw new Error(`"${raw}" is not true, false, a hop count or a list of addresses`);
};
const oneOf = <T extends string>(values: readonly T[]) => (raw: string): T => {
  const v = raw.toLowerCase() as T;
  if (!values.includes(v)) throw new Error(`"${raw}" is not one of ${values.join(', ')}`);
  return v;
};
const url = (protocols: string[]) => (raw: string): string => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`"${redact(raw)}" is not a valid URL`);
  }
  if (!protocols.includes(u.protocol)) throw new Error(`protocol must be one of ${protocols.join(', ')}`);
  return raw;
};
const TENANT_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const tenantId = (raw: string): string => {
  if (!TENANT_ID.test(raw)) throw new Error(`"${raw}" is not a valid tenant id (1-64 of [A-Za-z0-9_.-])`);
  return raw;
};
const redact = (raw: string) => raw.replace(/\/\/[^@/]*@/, '//***@');

function jsonObject(raw: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new Error(`malformed JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** tenant → list of keys (one or several, for rotation). */
function apiKeys(raw: string): Record<string, string[]> {
  const obj = jsonObject(raw);
  const out: Record<string, string[]> = {};
  for (const [tenant, value] of Object.entries(obj)) {
    tenantId(tenant);
    const keys = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
      throw new Error(`tenant "${tenant}": value must be a key string or a list of key strings`);
    }
    const cleaned = (keys as string[]).map((k) => k.trim());
    if (cleaned.some((k) => k.length < 8)) {
      throw new Error(`tenant "${tenant}": every key must be at least 8 characters`);
    }
    out[tenant] = cleaned;
  }
  return out;
}

function webhookMap(raw: string): Record<string, string> {
  const obj = jsonObject(raw);
  const out: Record<string, string> = {};
  for (const [tenant, value] of Object.entries(obj)) {
    tenantId(tenant);
    if (typeof value !== 'string') throw new Error(`tenant "${tenant}": value must be a URL string`);
    out[tenant] = url(['https:', 'http:'])(value);
  }
  return out;
}

/** A tenant's Slack app (bot token + channel): messages go through chat.postMessage. */
export interface SlackBotRoute {
  /** Bot token (xoxb-…); absent: SLACK_BOT_TOKEN. */
  token?: string;
  /** Channel id (C…) or name. */
  channel: string;
}

/** tenant → { token?, channel } for chat.postMessage. */
function botMap(raw: string): Record<string, SlackBotRoute> {
  const obj = jsonObject(raw);
  const out: Record<string, SlackBotRoute> = {};
  for (const [tenant, value] of Object.entries(obj)) {
    tenantId(tenant);
    const v = value as { token?: unknown; channel?: unknown } | null;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`tenant "${tenant}": value must be an object {"token"?, "channel"}`);
    if (typeof v.channel !== 'string' || !v.channel.trim()) throw new Error(`tenant "${tenant}": "channel" must be a non-empty string`);
    if (v.token !== undefined && (typeof v.token !== 'string' || !v.token.trim())) throw new Error(`tenant "${tenant}": "token" must be a non-empty string`);
    out[tenant] = { channel: v.channel.trim(), ...(v.token ? { token: (v.token as string).trim() } : {}) };
  }
  return out;
}

export interface LoadOptions {
  /** The process environment (defaults to process.env). */
  env?: Source;
  /** Directory holding .env files (defaults to the working directory). */
  cwd?: string;
}

/**
 * The one validated configuration object, read once at boot. Build it with {@link loadConfig}
 * (from files and environment) or {@link AppConfig.from} (tests, from a plain object).
 */
export class AppConfig {
  environment: Environment = 'development';
  port = 8000;
  logLevel: 'debug' | 'info' | 'warn' | 'error' = 'info';

  // store
  databaseUrl: string | undefined = undefined;
  embeddedPgPort = 54329;
  embeddedPgDataDir = '.data/pg';
  storeBackend: StoreBackend = 'postgres';
  storeHistoryLimit = 10000;
  eventRetentionHours = 48;
  dbConnectTimeoutSeconds = 60;
  /** Server-side statement_timeout of every query (the client waits a little longer); 0 disables it. */
  dbStatementTimeoutMs = 30_000;

  // tenancy
  multiTenantEnabled = false;
  tenants: string[] = ['default'];
  defaultTenant = 'default';
  tenantApiKeys: Record<string, string[]> = {};
  rateLimitPerMinute = 6000;

  // http
  /**
   * SIGTERM to exit: draining (503 to new requests), in-flight requests, background loops and the
   * database close must fit in it, else the process exits 1. Below the chart's
   * terminationGracePeriodSeconds (30), so SIGKILL never comes first.
   */
  shutdownGraceSeconds = 25;
  metricsToken: string | undefined = undefined;
  /** Serve /prom without a token on purpose in production (METRICS_PUBLIC=true). */
  metricsPublic = false;
  /** 401/403 answers per client address per minute before that address gets 429 (key guessing). */
  authFailureLimitPerMinute = 30;
  /** Express's `trust proxy` (TRUST_PROXY): which proxies' X-Forwarded-For names the client address. */
  trustProxy: boolean | number | string = false;
  requestBodyMaxBytes = 1024 * 1024;
  ingestMaxItems = 5000;
  ingestMaxBytes = 10 * 1024 * 1024;
  ingestMaxMetadataBytes = 16 * 1024;
  /** Replay: most events in one job, longest span of event time, and most service-minutes fed to the series detectors. */
  replayMaxEvents = 200_000;
  replayMaxSpanDays = 92;
  replayMaxSeriesMinutes = 2_000_000;
  /**
   * Live events older than this are refused per item (Loki's reject_old_samples_max_age). Unset in
   * the environment it is EVENT_RETENTION_HOURS: an event dated before the retention window would be
   * stored only to be removed at the next retention run (a minute later), so refusing it says so.
   */
  ingestMaxAgeHours = 48;
  /** Live events dated further than this ahead of arrival are refused per item (Loki's creation_grace_period). */
  ingestFutureGraceSeconds = 600;
  /** Writes of at least this many events go to PostgreSQL through COPY; 0: never (always INSERT). */
  ingestCopyMinEvents = 100;

  // detection & retraining
  detectionIntervalSeconds = 60;
  retrainIntervalHours = 6;
  retrainAnomalyThreshold = 3;
  /** Training window; 30 h so that a day remains for training after the newest tenth is held out for validation. */
  retrainLookbackMinutes = 1800;
  /** Least time between two retrainings (after the first model), whatever triggers them. */
  retrainMinIntervalMinutes = 60;
  /** A service's training events must span this much event time, or it is left out of training. */
  retrainMinServiceSpanMinutes = 60;
  /** …and number at least this many. */
  retrainMinServiceEvents = 100;
  /** Traffic of a service within this many minutes (event time) of one of its incidents or confirmed anomalies is left out of training. */
  retrainExclusionMarginMinutes = 10;
  trainingDatasetPath = 'data/training_logs.json';
  driftPsiThreshold = 0.2;
  metricsStream = 'anomaly_detector_metrics';
  seriesCloseIntervalSeconds = 15;
  seriesGraceSeconds = 120;
  /** Significance of the per-minute signal tests (traffic, errors, latency, size, per-event anomalies). */
  seriesAlpha = 1e-6;
  /** A tenant whose newest event time stands still this long has its watermark moved on by the wall clock. */
  seriesIdleSeconds = 300;
  modelsDir = 'models';
  modelContamination: 'auto' | number = 0.01;
  modelMinServiceRows = 500;
  modelMinTrainingRows = 200;

  // loki
  lokiPushUrl: string | undefined = undefined;
  lokiQueryUrl: string | undefined = undefined;
  lokiTrainingQuery = '{tenant="{tenant}"}';
  lokiDetectionQuery: string | undefined = undefined;
  schedulerEnabled = true;
  retrainRetryMinutes = 15;
  lokiMultiTenant = false;
  lokiUsername: string | undefined = undefined;
  lokiPassword: string | undefined = undefined;
  lokiBearerToken: string | undefined = undefined;
  lokiShipIntervalMs = 1000;
  lokiTimeoutMs = 10_000;
  /** Lines pushed to /loki/api/v1/push longer than this are truncated and flagged (Loki's max_line_size default). */
  lokiMaxLineBytes = 256 * 1024;

  // alerts
  slackWebhookUrl: string | undefined = undefined;
  tenantSlackWebhooks: Record<string, string> = {};
  alertLinkTemplate: string | undefined = undefined;
  /** Anomalies less than this apart join one alert; this long without one, the service has recovered. */
  alertCooldownMinutes = 10;
  /** An alert still going on this long after its last message is sent again (0: never). */
  alertRenotifyMinutes = 60;
  alertMinSeverity: AlertSeverity = 'info';
  alertDirection: AlertDirection = 'slower';
  alertMaxAttempts = 8;
  alertRetryBaseSeconds = 5;
  alertPollSeconds = 5;
  slackTimeoutMs = 10_000;
  /** Default Slack app: bot token and channel for chat.postMessage (exactly-once delivery). */
  slackBotToken: string | undefined = undefined;
  slackChannel: string | undefined = undefined;
  /** tenant → its own bot route (channel, and token unless SLACK_BOT_TOKEN serves). */
  tenantSlackBots: Record<string, SlackBotRoute> = {};
  /** Base URL of Slack's Web API (a proxy, or a fake in tests). */
  slackApiUrl = 'https://slack.com/api/';
  /** Timeout of the one webhook retry after an attempt with no answer. */
  slackRetryTimeoutMs = 20_000;

  /** Non-fatal notes for the start-up log (deprecated variables, open tenants). */
  warnings: string[] = [];

  /** A config for tests: defaults overridden by `overrides`, validated like a real start. */
  static from(overrides: Partial<AppConfig>): AppConfig {
    const cfg = Object.assign(new AppConfig(), overrides);
    // As from the environment: the accepted age follows the retention window unless set.
    if (overrides.ingestMaxAgeHours === undefined) cfg.ingestMaxAgeHours = cfg.eventRetentionHours;
    const r = new Reader({});
    validateCrossFields(cfg, r);
    if (r.problems.length) throw new ConfigError(r.problems);
    return cfg;
  }

  get isProduction(): boolean {
    return this.environment === 'production';
  }

  /**
   * Whether a tenant without a key is open: in development (and the test suite's `test`) only;
   * staging and production refuse to start with one.
   */
  get allowsOpenTenants(): boolean {
    return this.environment === 'development' || this.environment === 'test';
  }

  /** Tenants that have no key: open in development, refused elsewhere. */
  get openTenants(): string[] {
    return this.tenants.filter((t) => !this.tenantApiKeys[t]?.length);
  }
}

function readSecretsFile(path: string): Source {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([
      { variable: 'SECRETS_FILE', reason: `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})` },
    ]);
  }
  let obj: Record<string, unknown>;
  try {
    obj = jsonObject(text);
  } catch (e) {
    throw new ConfigError([{ variable: 'SECRETS_FILE', reason: `${path}: ${(e as Error).message}` }]);
  }
  const out: Source = {};
  for (const [k, v] of Object.entries(obj)) {
    // Secrets may hold structured values (e.g. TENANT_API_KEYS as an object): keep them as JSON text.
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

function readDotenv(path: string): Source {
  if (!existsSync(path)) return {};
  return parseDotenv(readFileSync(path));
}

/**
 * Merges the sources in precedence order (lowest first): defaults < .env < .env.<ENVIRONMENT> <
 * process environment < SECRETS_FILE, then validates every variable.
 * @throws ConfigError naming every bad variable and the reason.
 */
export function loadConfig(options: LoadOptions = {}): AppConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const base = readDotenv(resolve(cwd, '.env'));
  const environment = (env.ENVIRONMENT ?? base.ENVIRONMENT ?? 'development').trim().toLowerCase();
  const perEnv = /^[a-z]+$/.test(environment) ? readDotenv(resolve(cwd, `.env.${environment}`)) : {};
  let merged: Source = { ...base, ...perEnv, ...stripUndefined(env) };
  const secretsPath = merged.SECRETS_FILE?.trim();
  if (secretsPath) merged = { ...merged, ...readSecretsFile(resolve(cwd, secretsPath)) };
  return buildConfig(merged);
}

function stripUndefined(src: Source): Source {
  const out: Source = {};
  for (const [k, v] of Object.entries(src)) if (v !== undefined) out[k] = v;
  return out;
}

/** Every variable the configuration reads (for documentation checks). */
export function configVariables(): string[] {
  const r = new Reader({});
  buildConfigWith(r);
  return [...r.seen, 'SECRETS_FILE'];
}

/** Validates a merged variable map into an {@link AppConfig}. */
export function buildConfig(src: Source): AppConfig {
  const r = new Reader(src);
  const c = buildConfigWith(r);
  if (r.problems.length) throw new ConfigError(r.problems);
  return c;
}

function buildConfigWith(r: Reader): AppConfig {
  const c = new AppConfig();
  c.environment = r.get('ENVIRONMENT', c.environment, oneOf(['development', 'staging', 'production', 'test'] as const));
  c.port = r.get('PORT', c.port, int(0, 65535));
  c.logLevel = r.get('LOG_LEVEL', c.logLevel, oneOf(['debug', 'info', 'warn', 'error'] as const));

  c.databaseUrl = r.get('DATABASE_URL', undefined as string | undefined, url(['postgres:', 'postgresql:']));
  c.embeddedPgPort = r.get('EMBEDDED_PG_PORT', c.embeddedPgPort, int(1024, 65535));
  c.embeddedPgDataDir = r.get('EMBEDDED_PG_DATA_DIR', c.embeddedPgDataDir, (s) => s);
  const backend = r.get('ANOMALY_STORE_BACKEND', 'postgres', oneOf(['postgres', 'memory', 'sqlite'] as const));
  if (backend === 'sqlite') {
    c.warnings.push('ANOMALY_STORE_BACKEND=sqlite is deprecated: treated as postgres');
    c.storeBackend = 'postgres';
  } else {
    c.storeBackend = backend;
  }
  if (r.raw('ANOMALY_STORE_SQLITE_PATH') !== undefined) {
    c.warnings.push('ANOMALY_STORE_SQLITE_PATH is ignored: history is stored in PostgreSQL');
  }
  c.storeHistoryLimit = r.get('ANOMALY_STORE_HISTORY_LIMIT', c.storeHistoryLimit, int(1));
  c.eventRetentionHours = r.get('EVENT_RETENTION_HOURS', c.eventRetentionHours, int(1));
  c.dbConnectTimeoutSeconds = r.get('DB_CONNECT_TIMEOUT_SECONDS', c.dbConnectTimeoutSeconds, int(1, 3600));
  c.dbStatementTimeoutMs = r.get('DB_STATEMENT_TIMEOUT_MS', c.dbStatementTimeoutMs, int(0, 3_600_000));

  c.multiTenantEnabled = r.get('MULTI_TENANT_ENABLED', c.multiTenantEnabled, bool);
  c.defaultTenant = r.get('DEFAULT_TENANT', c.defaultTenant, tenantId);
  const listed = r.get('TENANTS', undefined as string[] | undefined, (raw) => {
    const list = raw.split(',').map((t) => t.trim()).filter(Boolean);
    list.forEach(tenantId);
    return [...new Set(list)];
  });
  c.tenants = c.multiTenantEnabled ? [...new Set([c.defaultTenant, ...(listed ?? [])])] : [c.defaultTenant];
  c.tenantApiKeys = r.get('TENANT_API_KEYS', {}, apiKeys);
  c.rateLimitPerMinute = r.get('RATE_LIMIT_PER_MINUTE', c.rateLimitPerMinute, int(1));

  c.shutdownGraceSeconds = r.get('SHUTDOWN_GRACE_SECONDS', c.shutdownGraceSeconds, int(1, 3600));
  c.metricsToken = r.get('METRICS_TOKEN', undefined as string | undefined, (s) => s);
  c.metricsPublic = r.get('METRICS_PUBLIC', c.metricsPublic, bool);
  c.authFailureLimitPerMinute = r.get('AUTH_FAILURE_LIMIT_PER_MINUTE', c.authFailureLimitPerMinute, int(1));
  c.trustProxy = r.get('TRUST_PROXY', c.trustProxy, trustProxy);
  c.ingestMaxItems = r.get('INGEST_MAX_ITEMS', c.ingestMaxItems, int(1, 1_000_000));
  c.ingestMaxBytes = r.get('INGEST_MAX_BYTES', c.ingestMaxBytes, int(1024, 1024 * 1024 * 1024));
  c.ingestMaxMetadataBytes = r.get('INGEST_MAX_METADATA_BYTES', c.ingestMaxMetadataBytes, int(64, 1024 * 1024));
  c.replayMaxEvents = r.get('REPLAY_MAX_EVENTS', c.replayMaxEvents, int(1, 10_000_000));
  c.replayMaxSpanDays = r.get('REPLAY_MAX_SPAN_DAYS', c.replayMaxSpanDays, num(0.001, 3660));
  c.replayMaxSeriesMinutes = r.get('REPLAY_MAX_SERIES_MINUTES', c.replayMaxSeriesMinutes, int(1, 100_000_000));
  c.ingestMaxAgeHours = r.get('INGEST_MAX_AGE_HOURS', c.eventRetentionHours, num(0.01, 24 * 365 * 100));
  if (c.ingestMaxAgeHours > c.eventRetentionHours) {
    c.warnings.push(
      `INGEST_MAX_AGE_HOURS (${c.ingestMaxAgeHours}) is above EVENT_RETENTION_HOURS (${c.eventRetentionHours}): live events dated before the retention window are accepted, then removed by the next retention run (retention goes by event time)`,
    );
  }
  c.ingestFutureGraceSeconds = r.get('INGEST_FUTURE_GRACE_SECONDS', c.ingestFutureGraceSeconds, int(0, 7 * 24 * 3600));
  c.ingestCopyMinEvents = r.get('INGEST_COPY_MIN_EVENTS', c.ingestCopyMinEvents, int(0, 1_000_000));

  c.detectionIntervalSeconds = r.get('DETECTION_INTERVAL_SECONDS', c.detectionIntervalSeconds, int(1, 86400));
  c.retrainIntervalHours = r.get('RETRAIN_INTERVAL_HOURS', c.retrainIntervalHours, num(0.01, 24 * 365));
  c.retrainAnomalyThreshold = r.get('RETRAIN_ANOMALY_THRESHOLD', c.retrainAnomalyThreshold, int(1));
  c.retrainLookbackMinutes = r.get('RETRAIN_LOOKBACK_MINUTES', c.retrainLookbackMinutes, int(1));
  c.retrainMinIntervalMinutes = r.get('RETRAIN_MIN_INTERVAL_MINUTES', c.retrainMinIntervalMinutes, num(0, 10_080));
  c.retrainMinServiceSpanMinutes = r.get('RETRAIN_MIN_SERVICE_SPAN_MINUTES', c.retrainMinServiceSpanMinutes, num(0, 10_080));
  c.retrainMinServiceEvents = r.get('RETRAIN_MIN_SERVICE_EVENTS', c.retrainMinServiceEvents, int(1));
  c.retrainExclusionMarginMinutes = r.get('RETRAIN_EXCLUSION_MARGIN_MINUTES', c.retrainExclusionMarginMinutes, num(0, 1440));
  c.trainingDatasetPath = r.get('TRAINING_DATASET_PATH', c.trainingDatasetPath, (s) => s);
  c.driftPsiThreshold = r.get('DRIFT_PSI_THRESHOLD', c.driftPsiThreshold, num(0.0001, 100));
  c.metricsStream = r.get('METRICS_STREAM', c.metricsStream, (s) => {
    if (!/^[A-Za-z_][A-Za-z0-9_:.-]{0,127}$/.test(s)) throw new Error(`"${s}" is not a valid Loki label value`);
    return s;
  });

  c.seriesCloseIntervalSeconds = r.get('SERIES_CLOSE_INTERVAL_SECONDS', c.seriesCloseIntervalSeconds, int(0, 3600));
  c.seriesGraceSeconds = r.get('SERIES_GRACE_SECONDS', c.seriesGraceSeconds, int(0, 3600));
  c.seriesAlpha = r.get('SERIES_ALPHA', c.seriesAlpha, num(1e-15, 0.01));
  c.seriesIdleSeconds = r.get('SERIES_IDLE_SECONDS', c.seriesIdleSeconds, int(1, 86_400));
  c.modelsDir = r.get('MODELS_DIR', c.modelsDir, (s) => s);
  c.modelContamination = r.get('MODEL_CONTAMINATION', c.modelContamination, (s) => {
    if (s === 'auto') return 'auto' as const;
    return num(0.0001, 0.5)(s);
  });
  c.modelMinServiceRows = r.get('MODEL_MIN_SERVICE_ROWS', c.modelMinServiceRows, int(10));
  c.modelMinTrainingRows = r.get('MODEL_MIN_TRAINING_ROWS', c.modelMinTrainingRows, int(10));

  c.lokiPushUrl = r.get('LOKI_PUSH_URL', undefined as string | undefined, url(['http:', 'https:']));
  c.lokiQueryUrl = r.get('LOKI_QUERY_URL', undefined as string | undefined, url(['http:', 'https:']));
  c.lokiTrainingQuery = r.get('LOKI_TRAINING_QUERY', c.lokiTrainingQuery, (s) => s);
  c.lokiDetectionQuery = r.get('LOKI_DETECTION_QUERY', undefined as string | undefined, (s) => s);
  c.schedulerEnabled = r.get('SCHEDULER_ENABLED', c.schedulerEnabled, bool);
  c.retrainRetryMinutes = r.get('RETRAIN_RETRY_MINUTES', c.retrainRetryMinutes, num(0, 10_080));
  c.lokiMultiTenant = r.get('LOKI_MULTI_TENANT', c.lokiMultiTenant, bool);
  c.lokiUsername = r.get('LOKI_USERNAME', undefined as string | undefined, (s) => s);
  c.lokiPassword = r.get('LOKI_PASSWORD', undefined as string | undefined, (s) => s);
  c.lokiBearerToken = r.get('LOKI_BEARER_TOKEN', undefined as string | undefined, (s) => s);
  c.lokiShipIntervalMs = r.get('LOKI_SHIP_INTERVAL_MS', c.lokiShipIntervalMs, int(0, 3_600_000));
  c.lokiTimeoutMs = r.get('LOKI_TIMEOUT_MS', c.lokiTimeoutMs, int(50, 600_000));
  c.lokiMaxLineBytes = r.get('LOKI_MAX_LINE_BYTES', c.lokiMaxLineBytes, int(1024, 64 * 1024 * 1024));

  c.slackWebhookUrl = r.get('SLACK_WEBHOOK_URL', undefined as string | undefined, url(['https:', 'http:']));
  c.tenantSlackWebhooks = r.get('TENANT_SLACK_WEBHOOKS', {}, webhookMap);
  c.alertLinkTemplate = r.get('ALERT_LINK_TEMPLATE', undefined as string | undefined, (s) => s);
  c.alertCooldownMinutes = r.get('ALERT_COOLDOWN_MINUTES', c.alertCooldownMinutes, num(0.001, 10_080));
  c.alertRenotifyMinutes = r.get('ALERT_RENOTIFY_MINUTES', c.alertRenotifyMinutes, num(0, 43_200));
  c.alertMinSeverity = r.get('ALERT_MIN_SEVERITY', c.alertMinSeverity, oneOf(['info', 'warning', 'critical'] as const));
  c.alertDirection = r.get('ALERT_DIRECTION', c.alertDirection, oneOf(['slower', 'faster', 'both'] as const));
  c.alertMaxAttempts = r.get('ALERT_MAX_ATTEMPTS', c.alertMaxAttempts, int(1, 100));
  c.alertRetryBaseSeconds = r.get('ALERT_RETRY_BASE_SECONDS', c.alertRetryBaseSeconds, num(0.01, 3600));
  c.alertPollSeconds = r.get('ALERT_POLL_SECONDS', c.alertPollSeconds, num(0.05, 3600));
  c.slackTimeoutMs = r.get('SLACK_TIMEOUT_MS', c.slackTimeoutMs, int(100, 120_000));
  c.slackBotToken = r.get('SLACK_BOT_TOKEN', undefined as string | undefined, (s) => s);
  c.slackChannel = r.get('SLACK_CHANNEL', undefined as string | undefined, (s) => s);
  c.tenantSlackBots = r.get('TENANT_SLACK_BOTS', {}, botMap);
  c.slackApiUrl = r.get('SLACK_API_URL', c.slackApiUrl, (s) => {
    url(['https:', 'http:'])(s);
    return s.endsWith('/') ? s : `${s}/`;
  });
  c.slackRetryTimeoutMs = r.get('SLACK_RETRY_TIMEOUT_MS', c.slackRetryTimeoutMs, int(100, 600_000));

  validateCrossFields(c, r);
  return c;
}

function validateCrossFields(c: AppConfig, r: Reader): void {
  for (const tenant of Object.keys(c.tenantApiKeys)) {
    if (!c.tenants.includes(tenant)) {
      r.fail('TENANT_API_KEYS', `tenant "${tenant}" is not an enabled tenant (enabled: ${c.tenants.join(', ')})`);
    }
  }
  const owners = new Map<string, string>();
  for (const [tenant, keys] of Object.entries(c.tenantApiKeys)) {
    for (const key of keys) {
      const other = owners.get(key);
      if (other && other !== tenant) r.fail('TENANT_API_KEYS', `the same key is given to "${other}" and "${tenant}"`);
      owners.set(key, tenant);
    }
  }
  if (!c.allowsOpenTenants && c.openTenants.length) {
    r.fail('TENANT_API_KEYS', `${c.environment} requires a key for every enabled tenant (only development may leave one open); missing: ${c.openTenants.join(', ')}`);
  }
  if (c.isProduction && !c.metricsToken && !c.metricsPublic) {
    r.fail('METRICS_TOKEN', 'production requires it: /prom shows every tenant\'s figures (set METRICS_PUBLIC=true to serve /prom without a token on purpose)');
  }
  if (c.lokiBearerToken && (c.lokiUsername || c.lokiPassword)) {
    r.fail('LOKI_BEARER_TOKEN', 'set either LOKI_BEARER_TOKEN or LOKI_USERNAME/LOKI_PASSWORD, not both');
  }
  if (c.slackChannel && !c.slackBotToken) {
    r.fail('SLACK_CHANNEL', 'SLACK_CHANNEL needs SLACK_BOT_TOKEN');
  }
  for (const [tenant, bot] of Object.entries(c.tenantSlackBots)) {
    if (!c.tenants.includes(tenant)) r.fail('TENANT_SLACK_BOTS', `tenant "${tenant}" is not an enabled tenant`);
    if (!bot.token && !c.slackBotToken) r.fail('TENANT_SLACK_BOTS', `tenant "${tenant}" has no "token" and SLACK_BOT_TOKEN is not set`);
  }
  if (c.slackRetryTimeoutMs < c.slackTimeoutMs) {
    r.fail('SLACK_RETRY_TIMEOUT_MS', `must be at least SLACK_TIMEOUT_MS (${c.slackTimeoutMs})`);
  }
  if (c.slackRetryTimeoutMs >= c.shutdownGraceSeconds * 1000) {
    // A call in flight at SIGTERM is waited for: a longer one can make shutdown overrun its deadline.
    c.warnings.push(`SLACK_RETRY_TIMEOUT_MS (${c.slackRetryTimeoutMs} ms) is not below SHUTDOWN_GRACE_SECONDS (${c.shutdownGraceSeconds} s): a webhook resend in flight at SIGTERM may make shutdown exit 1`);
  }
  if (Boolean(c.lokiUsername) !== Boolean(c.lokiPassword)) {
    r.fail('LOKI_USERNAME', 'LOKI_USERNAME and LOKI_PASSWORD must be set together');
  }
}
