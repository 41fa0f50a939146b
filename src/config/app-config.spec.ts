import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { AppConfig, ConfigError, configVariables, loadConfig } from './app-config';

function dir(files: Record<string, string> = {}): string {
  const d = mkdtempSync(join(tmpdir(), 'cfg-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content);
  return d;
}

function problemsOf(fn: () => unknown): { variable: string; reason: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe(loadConfig.name, () => {
  describe('defaults', () => {
    it('should start from the documented defaults', () => {
      const sut = loadConfig({ env: {}, cwd: dir() });
      expect(sut).toMatchObject({
        environment: 'development',
        port: 8000,
        embeddedPgPort: 54329,
        storeBackend: 'postgres',
        storeHistoryLimit: 10000,
        eventRetentionHours: 48,
        tenants: ['default'],
        defaultTenant: 'default',
        rateLimitPerMinute: 6000,
        ingestMaxItems: 5000,
        ingestMaxBytes: 10 * 1024 * 1024,
        ingestMaxMetadataBytes: 16 * 1024,
        detectionIntervalSeconds: 60,
        driftPsiThreshold: 0.2,
        trainingDatasetPath: 'data/training_logs.json',
        metricsStream: 'anomaly_detector_metrics',
      });
      expect(sut.databaseUrl).toBeUndefined();
    });
  });

  describe('precedence', () => {
    it('should apply defaults < .env < .env.<ENVIRONMENT> < environment < SECRETS_FILE', () => {
      const cwd = dir({
        '.env': 'ENVIRONMENT=staging\nPORT=1001\nRATE_LIMIT_PER_MINUTE=11\nEVENT_RETENTION_HOURS=21\nINGEST_MAX_ITEMS=31\n',
        '.env.staging': 'PORT=1002\nRATE_LIMIT_PER_MINUTE=12\nEVENT_RETENTION_HOURS=22\n',
        'secrets.json': JSON.stringify({ PORT: '1004', TENANT_API_KEYS: { default: 'secret-key-1' } }),
      });
      const sut = loadConfig({ env: { PORT: '1003', RATE_LIMIT_PER_MINUTE: '13', SECRETS_FILE: 'secrets.json' }, cwd });
      expect(sut.environment).toBe('staging');
      expect(sut.ingestMaxItems).toBe(31); // only in .env
      expect(sut.eventRetentionHours).toBe(22); // .env.staging over .env
      expect(sut.rateLimitPerMinute).toBe(13); // environment over files
      expect(sut.port).toBe(1004); // secrets over environment
      expect(sut.tenantApiKeys).toEqual({ default: ['secret-key-1'] });
    });

    it('should pick the .env.<ENVIRONMENT> named by the process environment', () => {
      const cwd = dir({ '.env': 'ENVIRONMENT=staging\n', '.env.test': 'PORT=1234\n', '.env.staging': 'PORT=999\n' });
      expect(loadConfig({ env: { ENVIRONMENT: 'test' }, cwd }).port).toBe(1234);
    });
  });

  describe('tenancy', () => {
    it('should serve only DEFAULT_TENANT when multi-tenancy is off', () => {
      const sut = loadConfig({ env: { TENANTS: 'a,b', DEFAULT_TENANT: 'main' }, cwd: dir() });
      expect(sut.tenants).toEqual(['main']);
    });

    it('should serve TENANTS plus DEFAULT_TENANT when multi-tenancy is on', () => {
      const sut = loadConfig({ env: { MULTI_TENANT_ENABLED: 'true', TENANTS: 'a, b,a', DEFAULT_TENANT: 'a' }, cwd: dir() });
      expect(sut.tenants).toEqual(['a', 'b']);
    });

    it('should accept a key or a list of keys per tenant', () => {
      const sut = loadConfig({
        env: { MULTI_TENANT_ENABLED: 'true', TENANTS: 'a,b', DEFAULT_TENANT: 'a', TENANT_API_KEYS: '{"a":"key-aaaaaa","b":["key-bbbbbb","key-bbbbb2"]}' },
        cwd: dir(),
      });
      expect(sut.tenantApiKeys).toEqual({ a: ['key-aaaaaa'], b: ['key-bbbbbb', 'key-bbbbb2'] });
      expect(sut.openTenants).toEqual([]);
    });

    it('should list open tenants in development', () => {
      const sut = loadConfig({
        env: { MULTI_TENANT_ENABLED: 'true', TENANTS: 'a,b', DEFAULT_TENANT: 'a', TENANT_API_KEYS: '{"a":"key-aaaaaa"}' },
        cwd: dir(),
      });
      expect(sut.openTenants).toEqual(['b']);
    });
  });

  describe('validation', () => {
    const cases: [string, Record<string, string>, string][] = [
      ['non-numeric RETRAIN_INTERVAL_HOURS', { RETRAIN_INTERVAL_HOURS: 'abc' }, 'RETRAIN_INTERVAL_HOURS'],
      ['malformed TENANT_API_KEYS', { TENANT_API_KEYS: '{"default":' }, 'TENANT_API_KEYS'],
      ['TENANT_API_KEYS not an object', { TENANT_API_KEYS: '["x"]' }, 'TENANT_API_KEYS'],
      ['a key too short', { TENANT_API_KEYS: '{"default":"short"}' }, 'TENANT_API_KEYS'],
      ['a key for an unknown tenant', { TENANT_API_KEYS: '{"other":"long-enough-key"}' }, 'TENANT_API_KEYS'],
      ['production without keys', { ENVIRONMENT: 'production' }, 'TENANT_API_KEYS'],
      ['staging without keys', { ENVIRONMENT: 'staging' }, 'TENANT_API_KEYS'],
      ['production without METRICS_TOKEN', { ENVIRONMENT: 'production', TENANT_API_KEYS: '{"default":"long-enough-key"}' }, 'METRICS_TOKEN'],
      ['a bad TRUST_PROXY', { TRUST_PROXY: 'every*one' }, 'TRUST_PROXY'],
      ['PORT out of range', { PORT: '70000' }, 'PORT'],
      ['unknown ENVIRONMENT', { ENVIRONMENT: 'qa' }, 'ENVIRONMENT'],
      ['bad boolean', { MULTI_TENANT_ENABLED: 'maybe' }, 'MULTI_TENANT_ENABLED'],
      ['bad DATABASE_URL', { DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
      ['bad backend', { ANOMALY_STORE_BACKEND: 'redis' }, 'ANOMALY_STORE_BACKEND'],
      ['bad tenant id', { MULTI_TENANT_ENABLED: 'true', TENANTS: 'ok,not ok' }, 'TENANTS'],
      ['negative DRIFT_PSI_THRESHOLD', { DRIFT_PSI_THRESHOLD: '-1' }, 'DRIFT_PSI_THRESHOLD'],
      ['bad TENANT_SLACK_WEBHOOKS', { TENANT_SLACK_WEBHOOKS: '{"default":"not a url"}' }, 'TENANT_SLACK_WEBHOOKS'],
      ['half of Loki basic auth', { LOKI_USERNAME: 'u' }, 'LOKI_USERNAME'],
    ];
    it.each(cases)('should reject %s naming the variable', (_name, env, variable) => {
      const problems = problemsOf(() => loadConfig({ env, cwd: dir() }));
      expect(problems.map((p) => p.variable)).toContain(variable);
      expect(problems.every((p) => p.reason.length > 0)).toBe(true);
    });

    it('should start production without METRICS_TOKEN only with METRICS_PUBLIC=true', () => {
      const env = { ENVIRONMENT: 'production', TENANT_API_KEYS: '{"default":"long-enough-key"}' };
      expect(loadConfig({ env: { ...env, METRICS_PUBLIC: 'true' }, cwd: dir() }).metricsPublic).toBe(true);
      expect(loadConfig({ env: { ...env, METRICS_TOKEN: 'scrape-token' }, cwd: dir() }).metricsToken).toBe('scrape-token');
    });

    it('should report every bad variable at once', () => {
      const problems = problemsOf(() => loadConfig({ env: { PORT: 'x', RETRAIN_INTERVAL_HOURS: 'abc' }, cwd: dir() }));
      expect(problems.map((p) => p.variable).sort()).toEqual(['PORT', 'RETRAIN_INTERVAL_HOURS']);
    });

    it('should name SECRETS_FILE when it cannot be read', () => {
      const problems = problemsOf(() => loadConfig({ env: { SECRETS_FILE: '/no/such/file.json' }, cwd: dir() }));
      expect(problems).toEqual([{ variable: 'SECRETS_FILE', reason: expect.stringContaining('ENOENT') }]);
    });

    it('should name SECRETS_FILE when it is not a JSON object', () => {
      const cwd = dir({ 's.json': 'not json' });
      const problems = problemsOf(() => loadConfig({ env: { SECRETS_FILE: 's.json' }, cwd }));
      expect(problems[0].variable).toBe('SECRETS_FILE');
    });
  });

  describe('accepted age of live events and retention', () => {
    it('should accept live events as old as the retention window when INGEST_MAX_AGE_HOURS is unset', () => {
      expect(loadConfig({ env: {}, cwd: dir() }).ingestMaxAgeHours).toBe(48);
      const sut = loadConfig({ env: { EVENT_RETENTION_HOURS: '168' }, cwd: dir() });
      expect(sut.ingestMaxAgeHours).toBe(168);
      expect(sut.warnings.join(' ')).not.toMatch(/INGEST_MAX_AGE_HOURS/);
      expect(AppConfig.from({ eventRetentionHours: 72 }).ingestMaxAgeHours).toBe(72);
    });

    it('should warn when live events older than the retention window are accepted', () => {
      const sut = loadConfig({ env: { INGEST_MAX_AGE_HOURS: '168', EVENT_RETENTION_HOURS: '48' }, cwd: dir() });
      expect(sut.ingestMaxAgeHours).toBe(168);
      expect(sut.warnings.join(' ')).toMatch(/INGEST_MAX_AGE_HOURS \(168\) is above EVENT_RETENTION_HOURS \(48\)/);
      expect(loadConfig({ env: { INGEST_MAX_AGE_HOURS: '24' }, cwd: dir() }).warnings.join(' ')).not.toMatch(/INGEST_MAX_AGE_HOURS/);
    });
  });

  describe('seed compatibility', () => {
    it('should treat ANOMALY_STORE_BACKEND=sqlite as postgres with a warning', () => {
      const sut = loadConfig({ env: { ANOMALY_STORE_BACKEND: 'sqlite', ANOMALY_STORE_SQLITE_PATH: 'x.db' }, cwd: dir() });
      expect(sut.storeBackend).toBe('postgres');
      expect(sut.warnings.join(' ')).toMatch(/sqlite is deprecated/);
      expect(sut.warnings.join(' ')).toMatch(/ANOMALY_STORE_SQLITE_PATH is ignored/);
    });
  });
});

describe(AppConfig.name, () => {
  describe('from', () => {
    it('should validate cross-field rules for configs built in code', () => {
      expect(() => AppConfig.from({ environment: 'production', tenants: ['a'], defaultTenant: 'a' })).toThrow(ConfigError);
      expect(() => AppConfig.from({ environment: 'staging', tenants: ['a'], defaultTenant: 'a' })).toThrow(ConfigError);
    });
  });
});

describe(configVariables.name, () => {
  it('should have every variable documented in .env.example, whose values are valid', () => {
    const example = readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(configVariables().filter((v) => !documented.has(v))).toEqual([]);
    const cwd = dir({ '.env': example });
    expect(() => loadConfig({ env: {}, cwd })).not.toThrow();
  });
});
