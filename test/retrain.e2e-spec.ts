import { NestFactory } from '@nestjs/core';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { register } from 'prom-client';
import request from 'supertest';
import { WorkerModule } from '../src/app.module';
import { AppConfig } from '../src/config/app-config';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../src/modules/detection/model/anomaly-model';
import { ModelRegistryService } from '../src/modules/retrain/model-registry.service';
import { RetrainStateRepository } from '../src/modules/store/retrain-state.repository';
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
      for (const deadline = Date.now() + 20_000; seen !== 1 && Date.now() < deadline; ) {
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
      // Dated from a second ago: a query's end is exclusive (as in Loki), and it may fall in the same millisecond.
      const nowNs = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < 260; i++) {
        loki.entries.push({ orgId: undefined, labels: { tenant: t, service: 'api' }, tsNs: nowNs - BigInt(i + 1) * 1_000_000_000n, line: JSON.stringify({ duration_ms: 100 + (i % 9) }) });
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
      // Nor is the traffic of its service within 10 minutes of it.
      const near = (e: { timestamp: Date }) => Math.abs(e.timestamp.getTime() - Date.UTC(2025, 10, 14, 6)) <= 10 * 60_000;
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

  it('should wait RETRAIN_RETRY_MINUTES after a failure without a model, unless stored events became enough since', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, retrainMinIntervalMinutes: 0, retrainRetryMinutes: 15 });
    const retrain = sut.app.get(RetrainService);
    const state = sut.app.get(RetrainStateRepository);
    try {
      // A failure while nothing was stored: events enough to train on since then are tried at once.
      // (Its time is its transaction's start; the events' are later transactions', after a round trip.)
      await state.recordError(t, 'No training data');
      await ingest(sut, items(600, 6));
      expect(await retrain.due(t)).toBe('interval');
      // A failure with those same events stored (training left some out): the cooldown stands.
      await state.recordError(t, 'No training data: too short a span');
      expect(await retrain.due(t)).toBeNull();
      expect(await retrain.due(t, new Date(Date.now() + 16 * 60_000))).toBe('interval');
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
      expect(prom.text).toContain(`anomaly_detector_scheduler_jobs_total{tenant="${bad}",outcome="failed",job="scheduler"} 1`);
    } finally {
      await sut.close();
    }
  });
});

/** Detections of the tenant, newest first (default key). */
const detections = async (app: TestApp): Promise<{ id: string; event_id: string; ts: string }[]> =>
  (await request(app.http).get('/detections?limit=1000').expect(200)).body.items;

describe('Champion/challenger', () => {
  it('should reject a challenger trained on incident traffic, keep the active version, and show why in GET /models', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, trainingDatasetPath: '/nonexistent/training.json' });
    try {
      await ingest(sut, items(1000, 11));
      expect((await request(sut.http).post('/retrain').expect(200)).body).toMatchObject({ version: 1, status: 'active' });
      // Four hours of a slowdown the next night, scored by v1; an operator confirms the five newest anomalies.
      const start = Date.UTC(2025, 10, 15);
      const incident = Array.from({ length: 400 }, (_, i) => httpEvent({ durationMs: 600 + ((i * 37) % 300), at: new Date(start + i * 36_000) }));
      const scored = await ingest(sut, incident);
      expect(scored.body.results.filter((r: { detection: { prediction: number } }) => r.detection.prediction === -1).length).toBeGreaterThan(300);
      for (const d of (await detections(sut)).slice(0, 5)) {
        await request(sut.http).post(`/detections/${d.id}/feedback`).send({ label: 'confirmed' }).expect(200);
      }

      const res = await request(sut.http).post('/retrain').expect(200);
      expect(res.body).toMatchObject({ version: 2, status: 'rejected', rejected_reason: expect.stringMatching(/misses [1-5] of 5 confirmed anomalies that v1 flags/) });
      expect((await request(sut.http).get('/metrics').expect(200)).body.active_model_version).toBe(1);
      const [v2] = (await request(sut.http).get('/models').expect(200)).body.items;
      expect(v2).toMatchObject({
        version: 2,
        status: 'rejected',
        rejected_reason: expect.stringContaining('confirmed anomalies'),
        validation: { passed: false, confirmed: 5, champion: { version: 1, confirmedFlagged: 5 } },
      });
      expect(v2.validation.challenger.confirmedFlagged).toBeLessThan(5);
      expect((await request(sut.http).post('/models/2/activate').expect(409)).body.code).toBe('MODEL_REJECTED');
    } finally {
      await sut.close();
    }
  });

  it('should reject a challenger that flags more of the recent held-out traffic than MODEL_CONTAMINATION allows', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, trainingDatasetPath: '/nonexistent/training.json' });
    try {
      // The newest tenth is five times slower than everything before it: a model of the rest does not fit it.
      await ingest(sut, items(1000, 12));
      const start = Date.UTC(2025, 10, 15);
      await ingest(sut, Array.from({ length: 112 }, (_, i) => httpEvent({ durationMs: 500 + ((i * 37) % 100), at: new Date(start + i * 30_000) })));
      const res = await request(sut.http).post('/retrain').expect(200);
      expect(res.body).toMatchObject({ version: 1, status: 'rejected', rejected_reason: expect.stringMatching(/^flags \d+ of 111 recent held-out events .* MODEL_CONTAMINATION 0.01/) });
      expect(res.body.stats.validation).toMatchObject({ holdout: 111, maxAnomalies: 6, champion: null, passed: false });
      expect((await request(sut.http).get('/metrics').expect(200)).body.active_model_version).toBeNull();
    } finally {
      await sut.close();
    }
  });
});

describe('Retrain triggers', () => {
  it("should wait the minimum interval, not count the expected share of anomalies, and forget the replaced model's", async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, retrainIntervalHours: 1000, retrainAnomalyThreshold: 3 });
    const retrain = sut.app.get(RetrainService);
    const later = () => new Date(Date.now() + 61 * 60_000);
    try {
      await ingest(sut, items(1000, 13));
      await request(sut.http).post('/retrain').expect(200);
      // Normal traffic: v1 flags about its contamination share, which is no reason to retrain.
      await ingest(sut, items(2000, 14));
      expect((await detections(sut)).length).toBeGreaterThanOrEqual(3);
      expect(await retrain.due(t, later())).toBeNull();
      // Server errors beyond that share: a reason, once the minimum interval has passed.
      await ingest(sut, Array.from({ length: 80 }, (_, i) => httpEvent({ status: 503, at: new Date(Date.UTC(2025, 10, 14, 12, i)) })));
      expect(await retrain.due(t)).toBeNull();
      expect(await retrain.due(t, later())).toBe('anomalies');
      // Another version takes over: v1's anomalies do not count toward it.
      await sut.app.get(ModelRegistryService).register(t, AnomalyModel.train(normalTraffic(1000, { seed: 15 }), DEFAULT_MODEL_PARAMS), 'dataset');
      expect(await retrain.due(t, later())).toBeNull();
    } finally {
      await sut.close();
    }
  });

  it('should measure drift on traffic scored since activation, so the data a model was trained on does not raise it again', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, retrainIntervalHours: 1000, retrainAnomalyThreshold: 100_000, retrainMinIntervalMinutes: 0 });
    const retrain = sut.app.get(RetrainService);
    try {
      await ingest(sut, items(600, 16));
      await request(sut.http).post('/retrain').expect(200);
      await ingest(sut, items(250, 17, 3));
      expect(await retrain.due(t)).toBeNull(); // too few events since activation to judge
      await ingest(sut, items(750, 18, 3));
      expect(await retrain.due(t)).toBe('drift');
      expect((await request(sut.http).post('/retrain').expect(200)).body).toMatchObject({ version: 2, status: 'active' });
      expect(await retrain.due(t)).toBeNull();
    } finally {
      await sut.close();
    }
  });

  it('should train the first model as soon as stored events are enough, even while a failure cools down', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200, trainingDatasetPath: '/nonexistent/training.json' });
    const retrain = sut.app.get(RetrainService);
    const start = Date.UTC(2025, 10, 16);
    const minutes = (n: number, from: number, over: number) => Array.from({ length: n }, (_, i) => httpEvent({ durationMs: 90 + ((i * 37) % 41), at: new Date(from + Math.floor((i * over * 60_000) / n)) }));
    try {
      await ingest(sut, minutes(300, start, 20));
      expect(await retrain.due(t)).toBe('interval');
      await expect(retrain.retrain(t, 'interval')).rejects.toThrow(/api: too short a span, 300 events over 19.9 min/);
      expect(await retrain.due(t)).toBeNull();
      await ingest(sut, minutes(300, start + 20 * 60_000, 100));
      expect(await retrain.due(t)).toBe('interval');
      expect(await retrain.retrain(t, 'interval')).toMatchObject({ version: 1, status: 'active' });
    } finally {
      await sut.close();
    }
  });
});

describe('Training data', () => {
  it('should leave out services with too short a span and the traffic around incidents', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 200 });
    const retrain = sut.app.get(RetrainService);
    try {
      await ingest(sut, items(600, 19));
      await ingest(sut, Array.from({ length: 150 }, (_, i) => httpEvent({ service: 'blip', at: new Date(Date.UTC(2025, 10, 14, 12, 0, i)) })));
      // An incident of api from 11:55 to 12:05: with the 10-minute margin, 11:45 to 12:15 stays out.
      await sut.database.dataSource.query(
        `INSERT INTO incidents (tenant_id, id, service, status, severity, started_at, detected_at, last_evidence_at, ended_at, signals)
         VALUES ($1, gen_random_uuid(), 'api', 'resolved', 'warning', $2, $2, $3, $3, '[]')`,
        [t, new Date(Date.UTC(2025, 10, 14, 11, 55)), new Date(Date.UTC(2025, 10, 14, 12, 5))],
      );
      const data = await retrain.trainingData(t, new Date());
      expect(data.cleaning.servicesLeftOut).toEqual([{ service: 'blip', rows: 150, spanMinutes: 2.5, reason: 'too short a span' }]);
      expect(data.events.filter((e) => e.service === 'blip')).toEqual([]);
      const inWindow = data.events.filter((e) => Math.abs(e.timestamp.getTime() - Date.UTC(2025, 10, 14, 12)) <= 15 * 60_000);
      expect(inWindow).toEqual([]);
      expect(data.cleaning.inExclusionWindows).toBeGreaterThan(0);
      expect(data.events.length).toBe(600 - data.cleaning.inExclusionWindows);

      const res = await request(sut.http).post('/retrain').expect(200);
      expect(res.body.stats.training.servicesLeftOut).toEqual([expect.objectContaining({ service: 'blip' })]);
      const [stored] = (await request(sut.http).get('/models').expect(200)).body.items;
      expect(stored.stats.training).toMatchObject({ candidates: 750, inExclusionWindows: data.cleaning.inExclusionWindows, holdout: Math.floor(data.events.length / 10) });
      // The model never saw blip: its cold-start baseline goes on scoring it.
      const r = await ingest(sut, [httpEvent({ service: 'blip' })]);
      expect(r.body.results[0].detection.model_version).toBeNull();
    } finally {
      await sut.close();
    }
  });
});

describe('Tolerant novelty (cases/09-constant-feature-critical-anomaly.sh)', () => {
  const constantService = async (over: (i: number) => Record<string, unknown>, probes: Record<string, unknown>[]) => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t] });
    try {
      const t0 = Date.now() - 100 * 60_000;
      const base = (i: number) => ({ timestamp: new Date(t0 + i * 10_000).toISOString(), service: 'fixed', duration_ms: 90 + ((i * 37) % 41), status_code: 200 });
      await ingest(sut, Array.from({ length: 600 }, (_, i) => ({ ...base(i), ...over(i) })));
      expect((await request(sut.http).post('/retrain').expect(200)).body).toMatchObject({ status: 'active', source: 'events' });
      const res = await ingest(sut, probes.map((p) => ({ timestamp: new Date().toISOString(), service: 'fixed', duration_ms: 110, status_code: 200, ...p })));
      return res.body.results.map((r: { detection: { prediction: number; model_version: number | null } }) => r.detection);
    } finally {
      await sut.close();
    }
  };

  it('should score bytes 1001 normal where training bytes were always 1000', async () => {
    const [same, plusOne] = await constantService(() => ({ bytes: 1000 }), [{ bytes: 1000 }, { bytes: 1001 }]);
    expect([same, plusOne]).toEqual([expect.objectContaining({ prediction: 1, model_version: 1 }), expect.objectContaining({ prediction: 1, model_version: 1 })]);
  });

  it('should do the same for a duration that never varied, and for bytes that training never carried', async () => {
    expect((await constantService(() => ({ duration_ms: 250, bytes: 5000 }), [{ duration_ms: 251 }, { duration_ms: 260 }])).map((d: { prediction: number }) => d.prediction)).toEqual([1, 1]);
    expect((await constantService(() => ({}), [{ bytes: 1 }, { bytes: 48_000 }])).map((d: { prediction: number }) => d.prediction)).toEqual([1, 1]);
  });

  it('should keep the strict rule for the status class', async () => {
    const [err] = await constantService(() => ({ bytes: 1000 }), [{ bytes: 1000, status_code: 503 }]);
    expect(err).toMatchObject({ prediction: -1, model_version: 1 });
  });
});
