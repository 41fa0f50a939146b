import { NestFactory } from '@nestjs/core';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { register } from 'prom-client';
import request from 'supertest';
import { WorkerModule } from '../src/app.module';
import { AppConfig } from '../src/config/app-config';
import { RetrainService } from '../src/modules/retrain/retrain.service';
import { SchedulerService } from '../src/modules/retrain/retrain.jobs';
import { Database } from '../src/modules/store/database/database';
import { httpEvent } from './factories/http-events';
import { normalTraffic } from './factories/log-events';
import { FakeLoki } from './support/fake-loki';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const items = (n: number, seed = 1, scale = 1, service = 'api') =>
  normalTraffic(n, { seed, services: [service] }).map((e) => httpEvent({ service, durationMs: Math.round(e.durationMs! * scale * 10) / 10, at: e.timestamp, bytes: e.bytes }));

async function ingest(app: TestApp, body: unknown[], key?: string): Promise<request.Response> {
  const r = request(app.http).post('/ingest');
  if (key) r.set('X-API-Key', key);
  return r.send(body).expect((res) => expect([200, 207]).toContain(res.status));
}

const datasetFile = (tenant: string, n: number) => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-'));
  const path = join(dir, 'training.json');
  writeFileSync(path, JSON.stringify(items(n, 9).map((e) => ({ ...e, tenant }))));
  return { path, dir };
};

describe('Model API and retraining', () => {
  const [a, b] = [newTenantId('a'), newTenantId('b')];
  const [ka, kb] = [newApiKey(), newApiKey()];
  const modelsDir = mkdtempSync(join(tmpdir(), 'models-'));
  let sut: TestApp;
  const cfg = {
    multiTenantEnabled: true,
    defaultTenant: a,
    tenants: [a, b],
    tenantApiKeys: { [a]: [ka], [b]: [kb] },
    modelMinTrainingRows: 200,
    modelsDir,
    trainingDatasetPath: '/nonexistent/training.json',
  };

  beforeAll(async () => {
    sut = await startTestApp(cfg);
    await ingest(sut, items(400, 1), ka);
  });
  afterAll(() => sut.close());

  it('should retrain from stored events and return the new version with its stats', async () => {
    const res = await request(sut.http).post('/retrain').set('X-API-Key', ka).expect(200);
    // The newest tenth (by event time) is held out to validate on.
    expect(res.body).toMatchObject({ version: 1, status: 'active', source: 'events', rejected_reason: null, stats: { rows: 360, global: { rows: 360 }, training: { candidates: 400, holdout: 40 } } });
    const second = await request(sut.http).post('/retrain').set('X-API-Key', ka).expect(200);
    expect(second.body).toMatchObject({ version: 2, status: 'active' });
    const list = await request(sut.http).get('/models').set('X-API-Key', ka).expect(200);
    expect(list.body.items.map((m: { version: number; status: string }) => [m.version, m.status])).toEqual([
      [2, 'active'],
      [1, 'inactive'],
    ]);
    expect(list.body.items[0]).toMatchObject({
      source: 'events',
      rows: 360,
      params: expect.objectContaining({ nEstimators: 100 }),
      rejected_reason: null,
      validation: { holdout: 40, passed: true, failures: [], champion: { version: 1, flagged: expect.any(Number) }, challenger: { flagged: expect.any(Number), anomalyRate: expect.any(Number) } },
    });
    expect(list.body.items[1].validation).toMatchObject({ holdout: 40, champion: null, passed: true });
  });

  it('should page the model list', async () => {
    const page1 = await request(sut.http).get('/models?limit=1').set('X-API-Key', ka).expect(200);
    expect(page1.body.items).toHaveLength(1);
    const page2 = await request(sut.http).get(`/models?limit=1&cursor=${page1.body.nextCursor}`).set('X-API-Key', ka).expect(200);
    expect(page2.body.items[0].version).toBe(page1.body.items[0].version - 1);
  });

  it('should roll back with POST /models/1/activate, seen by /metrics and by another replica', async () => {
    const other = await startTestApp(cfg);
    try {
      expect((await request(other.http).get('/metrics').set('X-API-Key', ka).expect(200)).body.active_model_version).toBe(2);
      const res = await request(sut.http).post('/models/1/activate').set('X-API-Key', ka).expect(200);
      expect(res.body).toMatchObject({ version: 1, status: 'active' });
      expect((await request(sut.http).get('/metrics').set('X-API-Key', ka).expect(200)).body.active_model_version).toBe(1);
      let seen = 0;
      for (let i = 0; i < 40 && seen !== 1; i++) {
        seen = (await request(other.http).get('/metrics').set('X-API-Key', ka).expect(200)).body.active_model_version;
        if (seen !== 1) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toBe(1);
    } finally {
      await other.close();
    }
  });

  it('should answer 404 for an unknown version and not show or activate models of another tenant', async () => {
    const res = await request(sut.http).post('/models/99/activate').set('X-API-Key', ka).expect(404);
    expect(res.body.code).toBe('MODEL_NOT_FOUND');
    expect((await request(sut.http).get('/models').set('X-API-Key', kb).expect(200)).body.items).toEqual([]);
    await request(sut.http).post('/models/1/activate').set('X-API-Key', kb).expect(404);
    await request(sut.http).get(`/models?tenant=${a}`).set('X-API-Key', kb).expect(403);
  });

  it('should answer 422 NO_TRAINING_DATA when no source has data', async () => {
    const res = await request(sut.http).post('/retrain').set('X-API-Key', kb).expect(422);
    expect(res.body).toMatchObject({ code: 'NO_TRAINING_DATA', message: expect.stringContaining('does not exist') });
  });
});

describe('Retraining data and policy', () => {
  it('should register a version trained on too few rows as rejected, leaving the active one, and refuse to activate it', async () => {
    const t = newTenantId();
    // 210 usable events, of which 21 are held out: 189 left to train on.
    const ds = datasetFile(t, 210);
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, trainingDatasetPath: ds.path, modelsDir: ds.dir });
    try {
      const res = await request(sut.http).post('/retrain').expect(200);
      expect(res.body).toMatchObject({ version: 1, status: 'rejected', source: 'dataset', stats: { rejectedReason: expect.stringContaining('fewer than 200') } });
      expect((await request(sut.http).get('/metrics').expect(200)).body.active_model_version).toBeNull();
      const act = await request(sut.http).post('/models/1/activate').expect(409);
      expect(act.body.code).toBe('MODEL_REJECTED');
    } finally {
      await sut.close();
    }
  });

  it('should take training data from Loki first, stored events when Loki is down, then the dataset', async () => {
    const t = newTenantId();
    const loki = new FakeLoki();
    await loki.start();
    const ds = datasetFile(t, 300);
    const sut = await startTestApp({
      defaultTenant: t,
      tenants: [t],
      modelMinTrainingRows: 200,
      trainingDatasetPath: ds.path,
      modelsDir: ds.dir,
      lokiQueryUrl: loki.url,
      lokiTimeoutMs: 300,
      retrainLookbackMinutes: 60,
      // The Loki lines below span 4 minutes.
      retrainMinServiceSpanMinutes: 0,
    });
    const retrain = sut.app.get(RetrainService);
    try {
      // Nothing anywhere but the dataset file.
      expect((await retrain.trainingData(t, new Date())).source).toBe('dataset');
      // Stored events (the lookback counts from their arrival).
      await ingest(sut, items(250, 3));
      expect((await retrain.trainingData(t, new Date())).source).toBe('events');
      // Loki with enough lines wins.
      const nowNs = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < 260; i++) {
        loki.entries.push({ orgId: undefined, labels: { tenant: t, service: 'api' }, tsNs: nowNs - BigInt(i) * 1_000_000_000n, line: JSON.stringify({ duration_ms: 100 + (i % 9) }) });
      }
      const fromLoki = await retrain.trainingData(t, new Date(Date.now() + 1000));
      expect(fromLoki.source).toBe('loki');
      expect(fromLoki.events).toHaveLength(260);
      // Loki down: back to stored events.
      await loki.stop();
      expect((await retrain.trainingData(t, new Date())).source).toBe('events');
    } finally {
      await sut.close();
      await loki.stop();
    }
  });

  it('should count anomalies toward retraining unless marked false positive, and keep confirmed ones out of training', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, retrainIntervalHours: 1000, retrainAnomalyThreshold: 3, retrainMinIntervalMinutes: 0 });
    const retrain = sut.app.get(RetrainService);
    try {
      await ingest(sut, items(300, 4));
      await request(sut.http).post('/retrain').expect(200);
      expect(await retrain.due(t)).toBeNull();
      const errs = await ingest(sut, [1, 2, 3].map((m) => httpEvent({ status: 503, at: new Date(Date.UTC(2025, 10, 14, 3 * m)) })));
      expect(errs.body.results.every((r: { detection: { prediction: number } }) => r.detection.prediction === -1)).toBe(true);
      expect(await retrain.due(t)).toBe('anomalies');

      const list = (await request(sut.http).get('/detections').expect(200)).body.items;
      await request(sut.http).post(`/detections/${list[0].id}/feedback`).send({ label: 'false_positive' }).expect(200);
      expect(await retrain.due(t)).toBeNull();

      const confirmed = await request(sut.http).post(`/detections/${list[1].id}/feedback`).send({ label: 'confirmed' }).expect(200);
      expect(confirmed.body.feedback).toBe('confirmed');
      const data = await retrain.trainingData(t, new Date());
      expect(data.events.map((e) => e.id)).not.toContain(list[1].event_id);
      expect(data.events.map((e) => e.id)).toContain(list[0].event_id);
      // Nor is the traffic of its service within 30 minutes of it.
      const near = (e: { timestamp: Date }) => Math.abs(e.timestamp.getTime() - Date.UTC(2025, 10, 14, 6)) <= 30 * 60_000;
      expect(data.events.filter(near)).toEqual([]);
      expect(data.cleaning.inExclusionWindows).toBeGreaterThan(0);
    } finally {
      await sut.close();
    }
  });

  it('should validate feedback and keep it per tenant', async () => {
    const [t, u] = [newTenantId(), newTenantId()];
    const [kt, ku] = [newApiKey(), newApiKey()];
    const sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: t, tenants: [t, u], tenantApiKeys: { [t]: [kt], [u]: [ku] } });
    try {
      await ingest(sut, [...items(40, 5), httpEvent({ status: 503 })], kt);
      const [d] = (await request(sut.http).get('/detections').set('X-API-Key', kt).expect(200)).body.items;
      const bad = await request(sut.http).post(`/detections/${d.id}/feedback`).set('X-API-Key', kt).send({ label: 'maybe' }).expect(400);
      expect(bad.body.details).toEqual([{ field: 'label', reason: 'label must be false_positive or confirmed' }]);
      await request(sut.http).post('/detections/not-a-uuid/feedback').set('X-API-Key', kt).send({ label: 'confirmed' }).expect(400);
      await request(sut.http).post(`/detections/${d.id}/feedback`).set('X-API-Key', ku).send({ label: 'confirmed' }).expect(404);
    } finally {
      await sut.close();
    }
  });

  it('should trigger on interval and on drift', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, retrainIntervalHours: 1, retrainAnomalyThreshold: 100_000, retrainMinIntervalMinutes: 0 });
    const retrain = sut.app.get(RetrainService);
    try {
      await ingest(sut, items(600, 6));
      expect(await retrain.due(t)).toBe('interval'); // never trained
      await request(sut.http).post('/retrain').expect(200);
      expect(await retrain.due(t)).toBeNull();
      expect(await retrain.due(t, new Date(Date.now() + 2 * 3_600_000))).toBe('interval');
      await ingest(sut, items(1000, 7, 3));
      expect(await retrain.due(t)).toBe('drift');
    } finally {
      await sut.close();
    }
  });
});

describe(SchedulerService.name, () => {
  it('should pull new lines from Loki, skip our own, and with two replicas run each tenant once, storing nothing twice', async () => {
    const t = newTenantId();
    const loki = new FakeLoki();
    await loki.start();
    const cfg = { defaultTenant: t, tenants: [t], lokiQueryUrl: loki.url, detectionIntervalSeconds: 3600, retrainIntervalHours: 1000, retrainAnomalyThreshold: 100_000 };
    const one = await startTestApp(cfg);
    const two = await startTestApp(cfg);
    try {
      const nowNs = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < 30; i++) {
        loki.entries.push({ orgId: undefined, labels: { tenant: t, service: 'promtail-svc' }, tsNs: nowNs - BigInt(i) * 1_000_000_000n, line: JSON.stringify({ duration_ms: 80 + i }) });
      }
      // Lines we shipped ourselves, or received through our intake, carry their source label.
      loki.entries.push({ orgId: undefined, labels: { tenant: t, service: 'api', source: 'api', stream: 'events' }, tsNs: nowNs, line: JSON.stringify({ duration_ms: 1 }) });
      const [r1, r2] = await Promise.all([one.app.get(SchedulerService).tick(), two.app.get(SchedulerService).tick()]);
      const ran = [...r1, ...r2].filter((r) => r.ran);
      expect(ran).toHaveLength(1);
      expect(ran[0]).toMatchObject({ tenant: t, pulled: 30 });
      await one.app.get(SchedulerService).tick();
      const count = await one.database.dataSource.query(`SELECT source, COUNT(*)::int AS n FROM events WHERE tenant_id = $1 GROUP BY source`, [t]);
      expect(count).toEqual([{ source: 'scheduler', n: 30 }]);
    } finally {
      await one.close();
      await two.close();
      await loki.stop();
    }
  });

  it('should let the CLI scheduler run next to a running service without duplicating work', async () => {
    const t = newTenantId();
    const ds = datasetFile(t, 300);
    const overrides = { defaultTenant: t, tenants: [t], trainingDatasetPath: ds.path, modelsDir: ds.dir, modelMinTrainingRows: 200, schedulerEnabled: false };
    const service = await startTestApp(overrides);
    const config = AppConfig.from({ environment: 'test', databaseUrl: process.env.DATABASE_URL, ...overrides });
    const db = await Database.open(config, { migrate: false });
    register.clear(); // the CLI is its own process; here it shares prom-client's registry
    const cli = await NestFactory.createApplicationContext(WorkerModule.register(config, db), { logger: false });
    await cli.init();
    try {
      const [a, b] = await Promise.all([service.app.get(SchedulerService).tick(), cli.get(SchedulerService).tick()]);
      const ran = [...a, ...b].filter((r) => r.ran);
      expect(ran).toHaveLength(1);
      expect(ran[0].retrained).toMatchObject({ version: 1, status: 'active', reason: 'interval' });
      expect((await request(service.http).get('/models').expect(200)).body.items).toHaveLength(1);
    } finally {
      await cli.close();
      await service.close();
    }
  });

  it("should log and count one tenant's failure without stopping the others", async () => {
    const [bad, good] = [newTenantId('bad'), newTenantId('good')];
    const ds = datasetFile(good, 300);
    const sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: bad, tenants: [bad, good], trainingDatasetPath: ds.path, modelsDir: ds.dir, modelMinTrainingRows: 200 });
    try {
      const results = await sut.app.get(SchedulerService).tick();
      expect(results.find((r) => r.tenant === bad)).toMatchObject({ ran: true, error: expect.stringContaining('No training data') });
      expect(results.find((r) => r.tenant === good)).toMatchObject({ ran: true, retrained: { status: 'active' } });
      const prom = await request(sut.http).get('/prom').expect(200);
      expect(prom.text).toContain(`scheduler_jobs_total{tenant="${bad}",outcome="failed"} 1`);
    } finally {
      await sut.close();
    }
  });
});
