import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import { join, posix, relative, resolve } from 'path';
import { Logger } from '@nestjs/common';
import { parse as parseDotenv } from 'dotenv';
import { register } from 'prom-client';
import request from 'supertest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { AppConfig, buildConfig, configVariables } from '../src/config/app-config';
import { LokiShipperService } from '../src/modules/ingestion/loki/loki-shipper.service';
import { JsonLogger } from '../src/modules/observability/json-logger';
import { httpEvent } from './factories/http-events';
import { FakeLoki, StoredEntry } from './support/fake-loki';
import { newTenantId, startTestApp, TestApp } from './support/test-app';

/*
 * The deployment files (Dockerfile, compose stack, Helm chart, Terraform, dashboards) checked with
 * what this machine has: no Docker engine, Kubernetes or helm binary. Static checks first; then the
 * dashboards' queries against what the running service really emits (/prom, the Loki streams of the
 * outbox shipper, the metrics-stream log line).
 */

const ROOT = resolve(__dirname, '..');
const CHART = join(ROOT, 'infra/helm/anomaly-detector');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const KNOWN_VARIABLES = new Set(configVariables());

type Json = Record<string, unknown>;

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const isHelmTemplate = (path: string) => relative(CHART, path).startsWith('templates');

function yamlFile(path: string): Json {
  return parseYaml(read(path)) as Json;
}

/** `a.b.c` exists in a parsed YAML document. */
function hasPath(doc: unknown, path: string[]): boolean {
  let cur = doc;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as Json))) return false;
    cur = (cur as Json)[key];
  }
  return true;
}

// --- compose ------------------------------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  env_file?: (string | { path: string; required?: boolean })[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  healthcheck?: { test: string[] };
  entrypoint?: string[];
  command?: string[];
  ports?: string[];
}

const compose = () => yamlFile('docker-compose.yml') as { name: string; services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const APP_SERVICE = 'anomaly-detector';

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, $$ → $. */
function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{(\w+)(?:(:?-)([^}]*))?\}/g, (match, name: string | undefined, op: string | undefined, def: string | undefined) => {
    if (match === '$$') return '$';
    const v = vars[name!];
    if (op === ':-') return v === undefined || v === '' ? def! : v;
    if (op === '-') return v === undefined ? def! : v;
    return v ?? '';
  });
}

// --- Dockerfile ---------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

function dockerfile(): Instruction[] {
  const joined = read('Dockerfile').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+([\s\S]*)$/.exec(l)!;
      return { op: m[1].toUpperCase(), args: m[2] };
    });
}

/** .dockerignore semantics for the patterns we use (*, **, !re-include), last match wins. */
function dockerIgnored(path: string): boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let ignored = false;
  for (const rule of rules) {
    const negate = rule.startsWith('!');
    const pattern = (negate ? rule.slice(1) : rule).replace(/\/$/, '');
    const re = new RegExp(
      '^' +
        pattern
          .split('**/')
          .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
          .join('(?:.*/)?') +
        '(?:/.*)?$',
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

const cliCommands = () => [...read('src/cli.ts').matchAll(/^ {2}'?([a-z][a-z:-]*)'?: \{$/gm)].map((m) => m[1]);
const packageScripts = () => Object.keys((JSON.parse(read('package.json')) as { scripts: Json }).scripts);

/** `node dist/<x>.js` runs the compiled `<x>.ts`. */
const compiledSourceExists = (distPath: string) => existsSync(join(ROOT, distPath.replace(/^dist\//, '').replace(/\.js$/, '.ts')));

// --- dashboards ---------------------------------------------------------------------------------

interface Target {
  expr?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  title: string;
  type: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  transformations?: { id: string; options: Json }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { type: string; uid: string }; current?: { value: string } }[] };
}

const DASHBOARD_DIR = join(ROOT, 'observability/grafana-dashboards');
const dashboards = (): [string, Dashboard][] =>
  readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f, JSON.parse(readFileSync(join(DASHBOARD_DIR, f), 'utf8')) as Dashboard]);

function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** The queries of the panels on datasources of one type (prometheus, loki). */
function queries(d: Dashboard, type: string): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) {
      if ((t.datasource ?? p.datasource)?.type === type && t.expr) out.push({ panel: p.title, expr: t.expr });
    }
  }
  return out;
}

const variableQuery = (q: unknown) => (typeof q === 'string' ? q : ((q as { query?: string }).query ?? ''));

/** Substitutes Grafana variables in a query by a neutral value. */
const neutral = (expr: string) => expr.replace(/\$\{?__\w+\}?/g, '1m').replace(/\$\{?(\w+)\}?/g, 'VAR_$1');

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names and label names a PromQL expression uses. */
function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels = new Set<string>();
  let s = neutral(expr);
  s = s.replace(/\{([^}]*)\}/g, (_m, body: string) => {
    for (const m of body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)) labels.add(m[1]);
    return ' ';
  });
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, body: string) => {
    body.split(',').map((l) => l.trim()).filter(Boolean).forEach((l) => labels.add(l));
    return ' ';
  });
  s = s.replace(/\[[^\]]*\]/g, ' ').replace(/"(?:[^"\\]|\\.)*"/g, ' ');
  const metrics = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || PROMQL_KEYWORDS.has(m[1].toLowerCase())) continue;
    metrics.add(m[1]);
  }
  return { metrics: [...metrics], labels: [...labels] };
}

interface LogqlParts {
  matchers: { label: string; op: string; value: string }[];
  jsonPaths: string[];
  /** A bare `| json`: every field of the line becomes a label. */
  jsonAll: boolean;
  produced: string[];
  usedLabels: string[];
  regexps: string[];
}

function logqlParts(expr: string): LogqlParts {
  const selector = /\{([^{}]*)\}/.exec(expr);
  const matchers = selector
    ? [...selector[1].matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => ({ label: m[1], op: m[2], value: m[3] }))
    : [];
  const pipeline = selector ? expr.slice(selector.index + selector[0].length) : expr;
  const jsonPaths: string[] = [];
  const produced: string[] = [];
  let jsonAll = false;
  for (const m of pipeline.matchAll(/\|\s*json\b([^|[]*)/g)) {
    const params = [...m[1].matchAll(/([a-zA-Z_]\w*)\s*=\s*"([^"]+)"/g)];
    if (!params.length) jsonAll = true;
    for (const p of params) {
      produced.push(p[1]);
      jsonPaths.push(p[2]);
    }
  }
  const regexps = [...pipeline.matchAll(/\|\s*regexp\s+`([^`]*)`/g)].map((m) => m[1]);
  for (const r of regexps) for (const g of r.matchAll(/\(\?P<(\w+)>/g)) produced.push(g[1]);
  const usedLabels = new Set<string>();
  const stripped = pipeline.replace(/`[^`]*`/g, '``').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of stripped.matchAll(/\|\s*([a-zA-Z_]\w*)\s*(?:=~|!~|!=|==|>=|<=|=|>|<)/g)) usedLabels.add(m[1]);
  for (const m of stripped.matchAll(/\|\s*unwrap\s+(\w+)/g)) usedLabels.add(m[1]);
  // Grouping may stand before the selector (`sum by (x) (...)`) or after a range (`... by (x)`).
  const whole = expr.replace(/`[^`]*`/g, '``').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of whole.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    m[1].split(',').map((l) => l.trim()).filter(Boolean).forEach((l) => usedLabels.add(l));
  }
  return { matchers, jsonPaths, jsonAll, produced, usedLabels: [...usedLabels], regexps };
}

/** The Prometheus text exposition: series name → label names seen on its samples. */
function exposition(text: string): { types: Map<string, string>; samples: Map<string, Set<string>> } {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1], t[2]);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    const set = samples.get(m[1]) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="/g)) set.add(l[1]);
    samples.set(m[1], set);
  }
  return { types, samples };
}

describe('Deployment files', () => {
  it('should parse every YAML and JSON file of config/, infra/, observability/ and docker-compose.yml', () => {
    const files = ['config', 'infra', 'observability'].flatMap((d) => walk(join(ROOT, d)));
    files.push(join(ROOT, 'docker-compose.yml'));
    const yaml = files.filter((f) => /\.ya?ml$/.test(f) && !isHelmTemplate(f));
    const json = files.filter((f) => f.endsWith('.json'));
    expect(yaml.length).toBeGreaterThanOrEqual(8);
    expect(json.length).toBeGreaterThanOrEqual(2);
    for (const f of yaml) {
      const docs = parseAllDocuments(readFileSync(f, 'utf8'));
      const errors = (Array.isArray(docs) ? docs : [docs]).flatMap((d) => d.errors.map((e) => `${relative(ROOT, f)}: ${e.message}`));
      expect(errors).toEqual([]);
    }
    for (const f of json) expect(() => JSON.parse(readFileSync(f, 'utf8'))).not.toThrow();
  });

  describe('docker-compose.yml', () => {
    it('should reference only services that are defined and local files that exist', () => {
      const c = compose();
      const services = Object.keys(c.services);
      expect(services).toEqual(expect.arrayContaining(['postgres', 'loki', 'promtail', 'prometheus', 'grafana', APP_SERVICE]));
      for (const [name, s] of Object.entries(c.services)) {
        const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
        for (const d of deps) expect({ service: name, dependsOn: d, defined: services.includes(d) }).toEqual({ service: name, dependsOn: d, defined: true });
        for (const v of s.volumes ?? []) {
          const source = v.split(':')[0];
          if (source.startsWith('./')) {
            expect({ service: name, volume: source, exists: existsSync(join(ROOT, source)) }).toEqual({ service: name, volume: source, exists: true });
          } else if (source.startsWith('/')) {
            expect(source).toBe('/var/run/docker.sock');
          } else {
            expect({ service: name, volume: source, declared: source in (c.volumes ?? {}) }).toEqual({ service: name, volume: source, declared: true });
          }
        }
        for (const e of s.env_file ?? []) {
          const entry = typeof e === 'string' ? { path: e, required: true } : { required: true, ...e };
          if (entry.required) expect(existsSync(join(ROOT, entry.path))).toBe(true);
        }
        if (s.build) {
          expect(existsSync(join(ROOT, s.build.context))).toBe(true);
          expect(existsSync(join(ROOT, s.build.context, s.build.dockerfile ?? 'Dockerfile'))).toBe(true);
        }
        if (!s.build) expect(s.image).toMatch(/^[\w./-]+:[\w.-]+$/);
      }
    });

    it('should set on the app only variables the config class knows, and work with the values of .env.example', () => {
      const app = compose().services[APP_SERVICE];
      const env = app.environment ?? {};
      expect(Object.keys(env).filter((v) => !KNOWN_VARIABLES.has(v))).toEqual([]);
      // `cp .env.example .env`: compose interpolates from it and hands it to the app (env_file).
      const dotenv = parseDotenv(read('.env.example'));
      const wired = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), dotenv)]));
      const config = buildConfig({ ...dotenv, ...wired });
      expect(new URL(config.databaseUrl!).hostname).toBe('postgres');
      expect(new URL(config.lokiPushUrl!).hostname).toBe('loki');
      expect(new URL(config.lokiPushUrl!).pathname).toBe('/loki/api/v1/push');
      expect(config.port).toBe(8000);
      expect(app.ports).toContain(`127.0.0.1:${config.port}:${config.port}`);
      // Nothing of the stack listens beyond this machine; Grafana has no default password.
      for (const [name, service] of Object.entries(compose().services)) {
        for (const port of service.ports ?? []) expect({ name, port }).toEqual({ name, port: expect.stringMatching(/^127\.0\.0\.1:/) });
      }
      const grafana = compose().services.grafana.environment as Record<string, string>;
      expect(grafana.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
      expect(grafana.GF_AUTH_ANONYMOUS_ENABLED).toBe('${GRAFANA_ANONYMOUS:-false}');
      // And with no .env at all (env_file is optional).
      expect(() => buildConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), {})])))).not.toThrow();
      const pg = compose().services.postgres.environment!;
      const url = new URL(config.databaseUrl!);
      expect(url.username).toBe(interpolate(pg.POSTGRES_USER, dotenv));
      expect(url.password).toBe(interpolate(pg.POSTGRES_PASSWORD, dotenv));
      expect(url.pathname).toBe(`/${interpolate(pg.POSTGRES_DB, dotenv)}`);
    });

    it('should have Promtail ship the other containers to Loki, not the app (it pushes its own lines)', () => {
      const c = compose();
      const promtail = yamlFile('config/promtail-config.yml') as {
        clients: { url: string }[];
        scrape_configs: { docker_sd_configs: { filters: { values: string[] }[] }[]; relabel_configs: { source_labels?: string[]; regex?: string; action?: string }[] }[];
      };
      expect(promtail.clients.map((cl) => new URL(cl.url).hostname)).toEqual(['loki']);
      const drops = promtail.scrape_configs.flatMap((s) => s.relabel_configs).filter((r) => r.action === 'drop');
      const appDropped = drops.some(
        (r) => r.source_labels?.includes('__meta_docker_container_label_com_docker_compose_service') && new RegExp(`^(?:${r.regex})$`).test(APP_SERVICE),
      );
      expect(appDropped).toBe(true);
      for (const other of Object.keys(c.services).filter((s) => s !== APP_SERVICE)) {
        expect(drops.some((r) => new RegExp(`^(?:${r.regex})$`).test(other))).toBe(false);
      }
      const filters = promtail.scrape_configs.flatMap((s) => s.docker_sd_configs.flatMap((d) => d.filters.flatMap((f) => f.values)));
      expect(filters).toContain(`com.docker.compose.project=${c.name}`);
    });

    it('should have Prometheus scrape the app at /prom with the METRICS_TOKEN bearer file compose writes', () => {
      const c = compose();
      const prom = yamlFile('config/prometheus.yml') as {
        scrape_configs: { job_name: string; metrics_path?: string; authorization?: { type: string; credentials_file: string }; static_configs: { targets: string[] }[] }[];
      };
      const job = prom.scrape_configs.find((s) => s.static_configs.some((sc) => sc.targets.includes(`${APP_SERVICE}:8000`)))!;
      expect(job).toBeDefined();
      expect(job.metrics_path).toBe('/prom');
      expect(job.authorization?.type).toBe('Bearer');
      const prometheus = c.services.prometheus;
      expect(prometheus.command!.join(' ')).toContain(`> ${job.authorization!.credentials_file}`);
      expect(prometheus.command!.join(' ')).toContain('$${METRICS_TOKEN');
      expect(prometheus.environment!.METRICS_TOKEN).toBe('${METRICS_TOKEN:-}');
      expect(prometheus.command!.join(' ')).toContain('--config.file=/etc/prometheus/prometheus.yml');
      expect(prometheus.volumes).toContain('./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    });

    it('should provision Grafana with the Loki and Prometheus datasources the dashboards use, and the dashboards', () => {
      const c = compose();
      const ds = yamlFile('config/grafana/provisioning/datasources/datasources.yml') as { datasources: { uid: string; type: string; url: string }[] };
      const byUid = new Map(ds.datasources.map((d) => [d.uid, d]));
      expect(byUid.get('loki')).toMatchObject({ type: 'loki', url: 'http://loki:3100' });
      expect(byUid.get('prometheus')).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
      const provisionedTypes = new Set(ds.datasources.map((d) => d.type));
      for (const [file, d] of dashboards()) {
        // Every datasource is a variable of the dashboard (uid "${name}") of a type Grafana has.
        const refs = [...JSON.stringify(d).matchAll(/"datasource":\{"type":"(\w+)","uid":"([^"]+)"\}/g)].filter((m) => m[1] !== 'grafana');
        expect(refs.length).toBeGreaterThan(0);
        for (const [, type, uid] of refs) {
          const name = /^\$\{(\w+)\}$/.exec(uid)?.[1];
          const variable = d.templating.list.find((v) => v.name === name && v.type === 'datasource');
          expect({ file, uid, variableOfType: variable?.query }).toEqual({ file, uid, variableOfType: type });
          expect(provisionedTypes.has(type)).toBe(true);
        }
      }
      const providers = yamlFile('config/grafana/provisioning/dashboards/dashboards.yml') as { providers: { options: { path: string } }[] };
      const grafanaVolumes = c.services.grafana.volumes!;
      for (const p of providers.providers) expect(grafanaVolumes).toContain(`./observability/grafana-dashboards:${p.options.path}:ro`);
      expect(grafanaVolumes).toContain('./config/grafana/provisioning:/etc/grafana/provisioning:ro');
      // The alert link .env.example suggests for the stack opens one of these dashboards.
      const link = /^# ALERT_LINK_TEMPLATE=http:\/\/localhost:3000\/d\/([\w-]+)\?(.*)$/m.exec(read('.env.example'))!;
      const linked = dashboards().find(([, d]) => d.uid === link[1])?.[1];
      expect(linked).toBeDefined();
      for (const v of link[2].matchAll(/var-(\w+)=/g)) expect(linked!.templating.list.map((t) => t.name)).toContain(v[1]);
    });
  });

  describe('Dockerfile', () => {
    it('should COPY only files of the repository that .dockerignore lets through, or from earlier stages', () => {
      const stages: string[] = [];
      let copies = 0;
      for (const { op, args } of dockerfile()) {
        if (op === 'FROM') {
          const m = /\bAS\s+(\S+)$/i.exec(args);
          if (m) stages.push(m[1]);
        }
        if (op !== 'COPY') continue;
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const sources = paths.slice(0, -1);
        if (from) {
          expect(stages).toContain(from);
          continue;
        }
        for (const src of sources) {
          copies++;
          expect({ src, exists: existsSync(join(ROOT, src)) }).toEqual({ src, exists: true });
          expect({ src, ignored: dockerIgnored(src) }).toEqual({ src, ignored: false });
        }
      }
      expect(copies).toBeGreaterThanOrEqual(5);
      expect(stages).toEqual(expect.arrayContaining(['build', 'deps', 'runtime']));
      // Secrets and local state never reach the build context.
      for (const p of ['.env', '.env.production', 'node_modules/x', '.data/pg/PG_VERSION', 'models/default/model.json', 'data/training_logs.json', 'src/main.spec.ts']) {
        expect({ p, ignored: dockerIgnored(p) }).toEqual({ p, ignored: true });
      }
    });

    it('should run only npm scripts, CLI commands and compiled entry points that exist', () => {
      const scripts = packageScripts();
      const commands = cliCommands();
      expect(commands).toEqual(expect.arrayContaining(['generate-data', 'train', 'migrate']));
      const steps = dockerfile().filter((i) => ['RUN', 'CMD', 'HEALTHCHECK', 'ENTRYPOINT'].includes(i.op));
      const text = steps.map((s) => s.args.replace(/[[\]",]/g, ' ')).join('\n');
      for (const m of text.matchAll(/npm run (\S+)/g)) expect(scripts).toContain(m[1]);
      const cli = [...text.matchAll(/node (dist\/src\/cli\.js) ([a-z:-]+)/g)];
      expect(cli.map((m) => m[2])).toEqual(['generate-data', 'train']);
      for (const m of cli) {
        expect(compiledSourceExists(m[1])).toBe(true);
        expect(commands).toContain(m[2]);
      }
      const cmd = dockerfile().filter((i) => i.op === 'CMD').pop()!;
      const entry = (JSON.parse(cmd.args) as string[])[1];
      expect(entry).toBe('dist/src/main.js');
      expect(compiledSourceExists(entry)).toBe(true);
      // Everything the Dockerfile sets for the service is a variable the config class reads.
      const set = [...text.matchAll(/\b([A-Z][A-Z0-9_]+)=/g)].map((m) => m[1]);
      for (const i of dockerfile().filter((x) => x.op === 'ENV')) for (const m of i.args.matchAll(/\b([A-Z][A-Z0-9_]+)=/g)) set.push(m[1]);
      expect(set.filter((v) => v !== 'NODE_ENV' && !KNOWN_VARIABLES.has(v))).toEqual([]);
      expect(set).toEqual(expect.arrayContaining(['ANOMALY_STORE_BACKEND', 'MODELS_DIR', 'TRAINING_DATASET_PATH']));
    });

    it('should build on glibc, prune dev dependencies in a clean stage, and run as a non-root uid with a health check', () => {
      const steps = dockerfile();
      const arg = steps.find((s) => s.op === 'ARG' && s.args.startsWith('NODE_IMAGE='))!;
      expect(arg.args).toMatch(/^NODE_IMAGE=node:20[\w.-]*-(bookworm|bullseye)(-slim)?$/);
      expect(steps.some((s) => s.op === 'RUN' && s.args.includes('npm ci --omit=dev'))).toBe(true);
      expect(steps.some((s) => s.op === 'RUN' && /ANOMALY_STORE_BACKEND=memory/.test(s.args) && /cli\.js train/.test(s.args))).toBe(true);
      const users = steps.filter((s) => s.op === 'USER').map((s) => s.args);
      expect(users[users.length - 1]).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      const health = steps.find((s) => s.op === 'HEALTHCHECK')!;
      expect(health.args).toContain("path: '/healthz'");
      // The chart runs the same uid.
      const values = yamlFile('infra/helm/anomaly-detector/values.yaml') as { podSecurityContext: { runAsUser: number; runAsNonRoot: boolean } };
      expect(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsUser}`).toBe(users[users.length - 1]);
    });
  });

  describe('Helm chart', () => {
    const values = () => yamlFile('infra/helm/anomaly-detector/values.yaml');
    const templates = () => walk(join(CHART, 'templates')).map((f) => ({ file: relative(CHART, f), text: readFileSync(f, 'utf8') }));

    it('should describe itself (Chart.yaml) and have the templates of a complete release', () => {
      const chart = yamlFile('infra/helm/anomaly-detector/Chart.yaml');
      expect(chart).toMatchObject({ apiVersion: 'v2', name: 'anomaly-detector', type: 'application' });
      expect(chart.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(chart.appVersion).toBe((JSON.parse(read('package.json')) as { version: string }).version);
      const files = templates().map((t) => t.file);
      for (const f of ['_helpers.tpl', 'NOTES.txt', 'deployment.yaml', 'service.yaml', 'configmap.yaml', 'secret.yaml', 'migration-job.yaml', 'servicemonitor.yaml', 'hpa.yaml', 'pdb.yaml']) {
        expect(files).toContain(posix.join('templates', f));
      }
    });

    it('should reference only values defined in values.yaml', () => {
      const v = values();
      const missing: string[] = [];
      let refs = 0;
      for (const t of templates()) {
        for (const m of t.text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
          refs++;
          const path = m[1].slice(1).split('.');
          if (!hasPath(v, path)) missing.push(`${t.file}: .Values.${path.join('.')}`);
        }
      }
      expect(refs).toBeGreaterThan(50);
      expect(missing).toEqual([]);
    });

    it('should set only environment variables the config class knows', () => {
      const v = values() as { config: Json; secret: { values: Json }; secretKeyRefs: Json };
      const names = new Set<string>([...Object.keys(v.config), ...Object.keys(v.secret.values), ...Object.keys(v.secretKeyRefs)]);
      for (const t of templates()) {
        for (const m of t.text.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]*)\s*$/gm)) names.add(m[1]);
        for (const m of t.text.matchAll(/(?:hasKey|get) \.Values\.\w+ "([A-Z][A-Z0-9_]*)"/g)) names.add(m[1]);
        for (const m of t.text.matchAll(/\.Values\.(?:config|secret\.values)\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]);
      }
      // The commented examples in values.yaml too.
      for (const m of read('infra/helm/anomaly-detector/values.yaml').matchAll(/^\s*#\s*([A-Z][A-Z0-9_]+):/gm)) names.add(m[1]);
      expect(names.size).toBeGreaterThan(12);
      expect([...names].filter((n) => !KNOWN_VARIABLES.has(n))).toEqual([]);
      // The secrets the issue names can come from the chart's Secret (or existingSecret / secretKeyRefs).
      expect(Object.keys(v.secret.values)).toEqual(expect.arrayContaining(['DATABASE_URL', 'TENANT_API_KEYS', 'SLACK_WEBHOOK_URL', 'TENANT_SLACK_WEBHOOKS', 'METRICS_TOKEN']));
      expect(v).toHaveProperty('existingSecret');
    });

    it('should probe /healthz and /readyz, run migrations as a pre-install/pre-upgrade hook, non-root on a read-only root filesystem', () => {
      const byFile = new Map(templates().map((t) => [t.file, t.text]));
      const deployment = byFile.get('templates/deployment.yaml')!;
      expect(deployment).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz/);
      expect(deployment).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz/);
      expect(deployment).toMatch(/mountPath: \/tmp/);
      const job = byFile.get('templates/migration-job.yaml')!;
      expect(job).toContain('helm.sh/hook: pre-install,pre-upgrade');
      const command = JSON.parse(/command: (\[.*\])/.exec(job)![1]) as string[];
      expect(command.slice(0, 2)).toEqual(['node', 'dist/src/cli.js']);
      expect(cliCommands()).toContain(command[2]);
      expect(byFile.get('templates/servicemonitor.yaml')).toContain('path: /prom');
      const v = values() as { securityContext: Json; podSecurityContext: Json; config: { MODELS_DIR: string } };
      expect(v.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(v.podSecurityContext).toMatchObject({ runAsNonRoot: true });
      // The writable models volume sits where the image keeps its models (WORKDIR + MODELS_DIR).
      const workdir = dockerfile().filter((i) => i.op === 'WORKDIR').pop()!.args;
      expect(v.config.MODELS_DIR).toBe(posix.join(workdir, 'models'));
      expect(deployment).toContain('cp -R /app/models/. /seed/');
    });
  });

  describe('Terraform', () => {
    const tf = () => walk(join(ROOT, 'infra/terraform')).filter((f) => f.endsWith('.tf')).map((f) => readFileSync(f, 'utf8')).join('\n');

    it('should deploy the chart with helm_release and take the variables of the seed plus image and replicas', () => {
      const text = tf();
      const variables = [...text.matchAll(/^variable "(\w+)"/gm)].map((m) => m[1]);
      expect(variables).toEqual(expect.arrayContaining(['kube_host', 'kube_ca', 'kube_token', 'env', 'image', 'replicas']));
      expect(text).toMatch(/^resource "helm_release" "\w+"/m);
      expect(text).toMatch(/^\s*backend "\w+" \{/m);
      const chart = /"\$\{path\.module\}\/([^"]+)"/.exec(text)![1];
      expect(existsSync(join(ROOT, 'infra/terraform', chart, 'Chart.yaml'))).toBe(true);
      // The chart values the module sets exist in values.yaml.
      const v = yamlFile('infra/helm/anomaly-detector/values.yaml');
      for (const path of ['fullnameOverride', 'replicaCount', 'image.repository', 'image.tag', 'config', 'existingSecret', 'secret.create', 'secret.values']) {
        expect({ path, defined: hasPath(v, path.split('.')) }).toEqual({ path, defined: true });
      }
      for (const key of ['fullnameOverride', 'replicaCount', 'config', 'existingSecret', 'repository', 'tag']) expect(text).toMatch(new RegExp(`\\b${key}\\s*=`));
      expect(text).toMatch(/secret = \{ create = true, values = var\.secret_env \}/);
    });
  });
});

describe('Dashboards and deployment probes against the running service', () => {
  const loki = new FakeLoki();
  const tenant = newTenantId('dash');
  const stdoutLines: string[] = [];
  let sut: TestApp;
  let promText: string;
  let metricsEntries: StoredEntry[];
  let eventEntries: StoredEntry[];

  beforeAll(async () => {
    // The service writes the metrics-stream line through Nest's Logger; tests run without a logger,
    // so catch the calls and format them with the production JSON logger.
    const json = new JsonLogger('info', (line) => stdoutLines.push(line));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(function (this: Logger, message: unknown) {
      const context = (this as unknown as { context?: string }).context;
      if (context === 'metrics-stream') json.log(message, context);
    });
    await loki.start();
    sut = await startTestApp({ defaultTenant: tenant, tenants: [tenant], lokiPushUrl: `${loki.url}/loki/api/v1/push`, lokiShipIntervalMs: 0 });
    // 40 normal events warm the service's cold-start baseline; then a server error is an anomaly.
    const normal = Array.from({ length: 40 }, (_, i) => httpEvent({ service: 'api', durationMs: 100 + (i % 10), at: new Date(Date.UTC(2025, 10, 14, 12, 0, i)) }));
    await request(sut.http).post('/ingest').send(normal).expect(200);
    const bad = await request(sut.http).post('/ingest').send(httpEvent({ service: 'api', status: 503, at: new Date(Date.UTC(2025, 10, 14, 12, 1)) })).expect(200);
    expect(bad.body.results[0].detection.prediction).toBe(-1);
    await request(sut.http).post('/ingest').send({ service: 'api' }).expect(400);
    // The alert job may hold the new detection's row for a moment; the shipper skips locked rows
    // (SKIP LOCKED) and takes them on its next pass, as its timer would.
    const shipper = sut.app.get(LokiShipperService);
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      await shipper.runOnce();
      if (loki.entries.some((e) => e.labels.tenant === tenant && e.labels.stream === sut.config.metricsStream)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    metricsEntries = loki.entries.filter((e) => e.labels.tenant === tenant && e.labels.stream === sut.config.metricsStream);
    eventEntries = loki.entries.filter((e) => e.labels.tenant === tenant && e.labels.stream === 'events');
    promText = (await request(sut.http).get('/prom').expect(200)).text;
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await sut?.close();
    await loki.stop();
  });

  it('should answer 200 on every path the deployment files probe or scrape', async () => {
    const paths = new Set<string>();
    const sources = [read('Dockerfile'), read('docker-compose.yml'), read('config/prometheus.yml'), ...walk(join(CHART, 'templates')).map((f) => readFileSync(f, 'utf8'))];
    for (const text of sources) for (const m of text.matchAll(/(?:path: '?|metrics_path: |prometheus\.io\/path: )(\/[a-z]+)/g)) paths.add(m[1]);
    expect([...paths].sort()).toEqual(['/healthz', '/prom', '/readyz']);
    for (const p of paths) await request(sut.http).get(p).expect(200);
  });

  it('should chart only metric names and labels that /prom really exposes', () => {
    const { types, samples } = exposition(promText);
    const series = new Set<string>(samples.keys());
    for (const [name, type] of types) {
      if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((s) => series.add(name + s));
      else series.add(name);
    }
    const labelsOf = (metric: string): Set<string> => {
      const base = metric.replace(/_(bucket|sum|count)$/, '');
      const registered = (register.getSingleMetric(types.has(metric) ? metric : base) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
      // Prometheus adds the target's job and instance to every series.
      const out = new Set<string>([...registered, ...(samples.get(metric) ?? []), 'job', 'instance']);
      if (metric.endsWith('_bucket')) out.add('le');
      return out;
    };
    const checked: string[] = [];
    for (const [file, d] of dashboards()) {
      const exprs = queries(d, 'prometheus').map((q) => ({ where: `${file} / ${q.panel}`, expr: q.expr }));
      for (const v of d.templating.list.filter((x) => x.datasource?.type === 'prometheus')) {
        const m = /label_values\((\w+(?:\{[^}]*\})?),\s*(\w+)\)/.exec(variableQuery(v.query))!;
        exprs.push({ where: `${file} / $${v.name}`, expr: `sum by (${m[2]}) (${m[1]})` });
      }
      for (const { where, expr } of exprs) {
        const { metrics, labels } = promqlNames(expr);
        expect({ where, metrics: metrics.length > 0 }).toEqual({ where, metrics: true });
        for (const metric of metrics) {
          expect({ where, metric, exposed: series.has(metric) }).toEqual({ where, metric, exposed: true });
          checked.push(metric);
        }
        const allowed = new Set(metrics.flatMap((metric) => [...labelsOf(metric)]));
        for (const label of labels) expect({ where, label, known: allowed.has(label) }).toEqual({ where, label, known: true });
      }
    }
    // Request rate, latency, errors, ingest, anomalies, both outboxes, the scheduler.
    expect(checked).toEqual(
      expect.arrayContaining([
        'anomaly_detector_http_requests_total',
        'anomaly_detector_http_request_duration_seconds_bucket',
        'anomaly_detector_ingest_events_total',
        'anomaly_detector_anomalies_total',
        'anomaly_detector_event_anomaly_score_bucket',
        'anomaly_detector_loki_outbox_backlog',
        'anomaly_detector_loki_outbox_oldest_age_seconds',
        'anomaly_detector_alerts_backlog',
        'anomaly_detector_scheduler_jobs_total',
      ]),
    );
  });

  it('should have captured a real anomaly record: the stdout line with "stream" and the Loki entry of the shipper', () => {
    expect(metricsEntries).toHaveLength(1);
    expect(metricsEntries[0].labels).toEqual({ tenant, service: 'api', env: 'test', stream: sut.config.metricsStream });
    expect(eventEntries.length).toBeGreaterThanOrEqual(41);
    const line = stdoutLines.map((l) => JSON.parse(l) as Json).find((l) => l.tenant === tenant)!;
    expect(line).toMatchObject({ stream: sut.config.metricsStream, service: 'api', status_code: 503, prediction: -1 });
    // What Loki holds is what the service logs: every field of the shipped record is on the log line.
    const shipped = JSON.parse(metricsEntries[0].line) as Json;
    expect(Object.keys(shipped).filter((k) => !(k in line))).toEqual([]);
  });

  it('should query Loki only by labels the shipper sets, and only JSON fields of real records', () => {
    const stdout = JSON.parse(stdoutLines.find((l) => l.includes(tenant))!) as Json;
    const kinds = {
      metrics: { labels: Object.keys(metricsEntries[0].labels), lines: [metricsEntries[0].line], fields: [Object.keys(JSON.parse(metricsEntries[0].line)), Object.keys(stdout)] },
      events: { labels: Object.keys(eventEntries[0].labels), lines: eventEntries.map((e) => e.line), fields: [Object.keys(JSON.parse(eventEntries[0].line))] },
    };
    const [file, d] = dashboards().find(([f]) => f === 'detection-overview.json')!;
    const streamVar = d.templating.list.find((v) => v.name === 'stream')!;
    expect(streamVar.current?.value).toBe(new AppConfig().metricsStream);
    expect(streamVar.current?.value).toBe(parseDotenv(read('.env.example')).METRICS_STREAM);

    const exprs = queries(d, 'loki').map((q) => ({ where: `${file} / ${q.panel}`, expr: q.expr }));
    for (const v of d.templating.list.filter((x) => x.datasource?.type === 'loki')) {
      const m = /label_values\((\{[^}]*\}),\s*(\w+)\)/.exec(variableQuery(v.query))!;
      exprs.push({ where: `${file} / $${v.name}`, expr: `sum by (${m[2]}) (count_over_time(${m[1]} [1m]))` });
    }
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    for (const { where, expr } of exprs) {
      const q = logqlParts(expr);
      const stream = q.matchers.find((m) => m.label === 'stream');
      expect({ where, stream: stream?.value }).toEqual({ where, stream: expect.any(String) });
      const values = stream!.value.replace('$stream', streamVar.current!.value).split('|');
      const streamKinds = values.map((v) => (v === sut.config.metricsStream ? 'metrics' : v === 'events' ? 'events' : `unknown stream ${v}`));
      for (const kind of streamKinds) {
        expect({ where, kind }).toEqual({ where, kind: expect.stringMatching(/^(metrics|events)$/) });
        const k = kinds[kind as 'metrics' | 'events'];
        for (const m of q.matchers) expect({ where, label: m.label, set: k.labels.includes(m.label) }).toEqual({ where, label: m.label, set: true });
        for (const path of q.jsonPaths) {
          for (const fields of k.fields) expect({ where, field: path, inRecord: fields.includes(path) }).toEqual({ where, field: path, inRecord: true });
        }
        const usable = new Set([...k.labels, ...q.produced, '__error__', ...(q.jsonAll ? k.fields[0] : [])]);
        for (const label of q.usedLabels) expect({ where, label, known: usable.has(label) }).toEqual({ where, label, known: true });
        for (const re of q.regexps) {
          const js = new RegExp(re.replace(/\(\?P</g, '(?<'));
          const hit = k.lines.map((l) => js.exec(l)).find(Boolean);
          expect({ where, re, matches: Boolean(hit) }).toEqual({ where, re, matches: true });
          // The first word of the explanation's summary: a field of the event.
          expect(['duration_ms', 'status_code', 'bytes']).toContain(hit!.groups!.feature);
          expect(String(JSON.parse(k.lines[0]).summary).startsWith(hit!.groups!.feature)).toBe(true);
        }
      }
    }
  });

  it('should show in the anomalies table only fields of the anomaly record', () => {
    const shipped = Object.keys(JSON.parse(metricsEntries[0].line));
    const [, d] = dashboards().find(([f]) => f === 'detection-overview.json')!;
    const table = panelsOf(d).find((p) => p.type === 'table')!;
    expect(table.transformations!.map((t) => t.id)).toEqual(['extractFields', 'organize']);
    const organize = table.transformations![1].options as { indexByName: Json; renameByName: Json };
    const shown = [...Object.keys(organize.indexByName), ...Object.keys(organize.renameByName)].filter((f) => f !== 'Time');
    expect(shown).toEqual(expect.arrayContaining(['service', 'prediction', 'duration_ms', 'summary', 'score']));
    expect(shown.filter((f) => !shipped.includes(f))).toEqual([]);
  });
});
