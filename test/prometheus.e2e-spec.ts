import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { AddressInfo, createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import request from 'supertest';
import { parseLogEvent } from '../src/modules/detection/features/log-event';
import { LokiShipperService } from '../src/modules/ingestion/loki/loki-shipper.service';
import { TrainingService } from '../src/modules/retrain/training.service';
import { SchedulerService } from '../src/modules/retrain/retrain.jobs';
import { httpEvent } from './factories/http-events';
import { storeEvidence } from './factories/incident-traffic';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { FakeLoki } from './support/fake-loki';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

// Debian's `prometheus` package (which .ci/run installs when missing) gives both tools.
const onPath = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const hasPromtool = onPath('promtool');
const hasPrometheus = onPath('prometheus');

const ROOT = join(__dirname, '..');
const RULES = join(ROOT, 'infra/helm/anomaly-detector/files/prometheus-rules.yml');
const DASHBOARDS = join(ROOT, 'observability/grafana-dashboards');

interface Panel {
  title: string;
  targets?: { expr?: string; datasource?: { type: string } }[];
  datasource?: { type: string };
  panels?: Panel[];
}

/** Every PromQL query of the dashboards: panel targets on a Prometheus datasource. */
function dashboardQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const file of readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as { panels: Panel[] };
    for (const p of d.panels.flatMap((x) => [x, ...(x.panels ?? [])])) {
      for (const t of p.targets ?? []) {
        if ((t.datasource ?? p.datasource)?.type === 'prometheus' && t.expr) out.push({ where: `${file} / ${p.title}`, expr: t.expr });
      }
    }
  }
  return out;
}

/** A query with Grafana's variables as Grafana would send it for "All" over the last minutes. */
const substitute = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '20s')
    .replaceAll('$__interval', '20s')
    .replaceAll('$__range', '5m')
    .replace(/\$\{?(job|tenant|service)\}?/g, '.+');

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Prometheus exposition and rules', () => {
  const t = newTenantId('prom');
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [newApiKey()] } });
  });
  afterAll(() => sut.close());

  it('should prefix every metric of the service and start known counters at zero', async () => {
    const text = (await request(sut.http).get('/prom').expect(200)).text;
    const names = [...text.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]);
    expect(names.filter((n) => !/^(anomaly_detector_|process_|nodejs_)/.test(n))).toEqual([]);
    expect(text).toContain(`anomaly_detector_ingest_events_total{tenant="${t}",outcome="accepted",reason="",source="api"} 0`);
    expect(text).toContain(`anomaly_detector_anomalies_total{tenant="${t}",kind="series",scorer="series"} 0`);
    expect(text).toContain(`anomaly_detector_scheduler_jobs_total{tenant="${t}",outcome="failed",job="scheduler"} 0`);
    expect(text).toContain(`anomaly_detector_alerts_failed_total{tenant="${t}",kind="open"} 0`);
    expect(text).toContain(`anomaly_detector_retrains_total{tenant="${t}",reason="manual",result="failed"} 0`);
    expect(text).toMatch(/^anomaly_detector_build_info\{version="\d+\.\d+\.\d+[^"]*",nodejs_version="v\d+/m);
  });

  (hasPromtool ? it : it.skip)('should pass promtool check metrics', async () => {
    await request(sut.http).post('/ingest').set('X-API-Key', 'wrong').send(httpEvent()).expect(401);
    const text = (await request(sut.http).get('/prom').expect(200)).text;
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
  });

  (hasPromtool ? it : it.skip)('should pass promtool check rules, and the chart should carry the same file', () => {
    const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    const template = readFileSync(join(ROOT, 'infra/helm/anomaly-detector/templates/prometheusrule.yaml'), 'utf8');
    expect(template).toContain('.Files.Get "files/prometheus-rules.yml"');
    expect(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')).toContain(
      './infra/helm/anomaly-detector/files/prometheus-rules.yml:/etc/prometheus/rules/anomaly-detector.yml:ro',
    );
    expect(readFileSync(join(ROOT, 'config/prometheus.yml'), 'utf8')).toContain('/etc/prometheus/rules/anomaly-detector.yml');
  });
});

// The dashboards' queries against a real Prometheus scraping the running service after a scenario:
// each must evaluate without error, and return data unless it is an alarm-style query (`> 0`) that
// is empty while all is well.
(hasPrometheus ? describe : describe.skip)('Dashboard queries against a real Prometheus', () => {
  const t = newTenantId('dash');
  const key = newApiKey();
  const loki = new FakeLoki();
  let sut: TestApp;
  let prometheus: ChildProcess;
  let promUrl: string;
  let dir: string;

  const query = async (expr: string, time?: number) => {
    const res = await fetch(`${promUrl}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr, ...(time ? { time: String(time) } : {}) }),
    });
    return (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };

  beforeAll(async () => {
    await loki.start();
    sut = await startTestApp({
      defaultTenant: t,
      tenants: [t],
      tenantApiKeys: { [t]: [key] },
      lokiPushUrl: `${loki.url}/loki/api/v1/push`,
      lokiShipIntervalMs: 0,
    });
    await sut.app.listen(0, '127.0.0.1');
    const appPort = (sut.http.address() as AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(RULES)}]`,
        'scrape_configs:',
        '  - job_name: anomaly-detector',
        '    metrics_path: /prom',
        `    static_configs: [{ targets: ["127.0.0.1:${appPort}"] }]`,
      ].join('\n'),
    );
    promUrl = `http://127.0.0.1:${await freePort()}`;
    prometheus = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${promUrl.slice(7)}`, '--log.level=warn'],
      { stdio: 'ignore' },
    );
    await until('Prometheus ready', 30_000, async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));

    // The scenario: normal traffic, a model trained on it, more traffic with an anomaly and an incident, a rejected
    // item, a 401, a Loki push refused once then shipped, a scheduler pass.
    const normal = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => httpEvent({ service: 'api', durationMs: 100 + (i % 10), at: new Date(from + i * 1000) }));
    await request(sut.http).post('/ingest').set('X-API-Key', key).send(normal(60, Date.now() - 120_000)).expect(200);
    // A model as `npm run train` registers one (the retrain policy's validation is not the subject here).
    const training = normal(300, Date.now() - 86_400_000).map((raw) => {
      const parsed = parseLogEvent(raw, { maxMetadataBytes: 16_384 });
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
      return parsed.event;
    });
    expect((await sut.app.get(TrainingService).train(t, training, 'dataset')).status).toBe('active');
    // 200 events after the model: the drift monitor's first PSI figures.
    await request(sut.http).post('/ingest').set('X-API-Key', key).send(normal(200, Date.now() - 100_000)).expect(200);
    await request(sut.http).post('/ingest').set('X-API-Key', key).send(httpEvent({ service: 'api', status: 503, durationMs: 5000 })).expect(200);
    // One anomaly is data, not a page: an incident needs series evidence (stored as the series job does).
    await storeEvidence(sut, t, 'api');
    await sut.app.get(AlertsService).tick();
    await request(sut.http).post('/ingest').set('X-API-Key', key).send({ service: 'api' }).expect(400);
    await request(sut.http).get('/tenant').expect(401);
    await request(sut.http).get('/metrics').set('X-API-Key', key).expect(200);
    loki.failNext({ status: 500 });
    const shipper = sut.app.get(LokiShipperService);
    await shipper.runOnce();
    // The retry, as its timer would run it once the backoff has passed.
    await shipper.runOnce(() => Date.now() + 3_600_000);
    expect(loki.entries.some((e) => e.labels.tenant === t)).toBe(true);
    await sut.app.get(SchedulerService).tick();
    // The scenario is in Prometheus once a scrape holds the anomaly, and a few more follow for rates.
    const seen = await until('the scenario in Prometheus', 30_000, async () => {
      const r = await query(`sum(anomaly_detector_loki_shipped_entries_total{tenant="${t}"})`);
      return Number((r.data?.result[0] as { value?: [number, string] })?.value?.[1]) >= 1 ? Date.now() : undefined;
    });
    await until('three more scrapes', 30_000, async () => (Date.now() - seen > 3_500 ? true : undefined));
  }, 120_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await sut?.close();
    await loki.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('should evaluate every dashboard query, each returning data after the scenario', async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(30);
    const failures: { where: string; expr: string; problem: string }[] = [];
    for (const { where, expr } of queries) {
      const r = await query(substitute(expr));
      if (r.status !== 'success') failures.push({ where, expr, problem: r.error ?? r.status });
      else if (!r.data!.result.length && !/\)\s*>\s*0\s*$/.test(expr)) failures.push({ where, expr, problem: 'no data' });
    }
    expect(failures).toEqual([]);
  });

  it('should evaluate every alerting rule of the chart without error', async () => {
    type Rule = { name: string; health: string; lastError?: string };
    const rules = await until('every rule evaluated', 20_000, async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: Rule[] }[] } };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length && all.every((r) => r.health !== 'unknown') ? all : undefined;
    });
    expect(rules.length).toBeGreaterThanOrEqual(9);
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
  });
});
