import { mkdtempSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { writeFileAtomic } from '../src/common/atomic-write';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../src/modules/detection/model/anomaly-model';
import { ModelRegistryService } from '../src/modules/retrain/model-registry.service';
import { waitFor } from './factories/alert-traffic';
import { normalTraffic } from './factories/log-events';
import { newTenantId, startTestApp, TestApp } from './support/test-app';

const params = { ...DEFAULT_MODEL_PARAMS, minServiceRows: 100_000 };
const model = (rows: number, seed: number) => AnomalyModel.train(normalTraffic(rows, { seed }), { ...params, seed });

describe(ModelRegistryService.name, () => {
  const a = newTenantId('a');
  const b = newTenantId('b');
  let app: TestApp;
  let sut: ModelRegistryService;

  beforeAll(async () => {
    app = await startTestApp({ multiTenantEnabled: true, defaultTenant: a, tenants: [a, b], modelMinTrainingRows: 200 });
    sut = app.app.get(ModelRegistryService);
  });
  afterAll(() => app.close());

  describe('register', () => {
    it('should number versions per tenant, keep one active, and keep stats', async () => {
      const first = await sut.register(a, model(500, 1), 'dataset');
      const second = await sut.register(a, model(600, 2), 'dataset');
      expect([first.version, second.version]).toEqual([1, 2]);
      expect(second.status).toBe('active');
      const list = await sut.list(a);
      expect(list.map((m) => [m.version, m.status])).toEqual([
        [2, 'active'],
        [1, 'inactive'],
      ]);
      expect(list[0]).toMatchObject({ rows: 600, source: 'dataset', params: expect.objectContaining({ nEstimators: 100 }) });
      expect(list[0].stats).toMatchObject({ rows: 600, global: { rows: 600, offset: expect.any(Number), scores: expect.any(Object) } });
      expect(list[0].timeFrom).toBeInstanceOf(Date);
    });

    it('should store a model trained on too few rows as rejected, leaving the active one', async () => {
      const r = await sut.register(a, model(50, 3), 'dataset');
      expect(r.status).toBe('rejected');
      expect((await sut.active(a))?.version).toBe(2);
      expect(await sut.activate(a, r.version)).toBe(false);
    });
  });

  describe('register with a validation', () => {
    it('should store a failed validation as rejected with its reason and figures, leaving the active one', async () => {
      const before = (await sut.active(a))?.version;
      const r = await sut.register(a, model(500, 8), 'events', { validation: { passed: false, holdout: 50 }, rejectedReason: 'misses 2 of 2 confirmed anomalies' });
      expect(r).toMatchObject({ status: 'rejected', stats: { rejectedReason: 'misses 2 of 2 confirmed anomalies', validation: { passed: false, holdout: 50 } } });
      expect((await sut.active(a))?.version).toBe(before);
      expect(await sut.activate(a, r.version)).toBe(false);
      expect((await sut.find(a, r.version))?.stats).toMatchObject({ rejectedReason: 'misses 2 of 2 confirmed anomalies' });
      expect(await sut.lastRegisteredAt(a)).toEqual((await sut.find(a, r.version))?.createdAt);
      expect(await sut.lastRegisteredAt(b)).toBeNull();
    });
  });

  describe('activate', () => {
    it('should roll back to an earlier version and serve it from the cache', async () => {
      expect(await sut.activate(a, 1)).toBe(true);
      const active = await sut.active(a);
      expect(active?.version).toBe(1);
      expect(active?.model.rows).toBe(500);
      expect((await sut.list(a)).filter((m) => m.status === 'active').map((m) => m.version)).toEqual([1]);
    });

    it('should answer false for a version that does not exist', async () => {
      expect(await sut.activate(a, 99)).toBe(false);
    });
  });

  describe('tenant isolation', () => {
    it('should not return or activate models of another tenant', async () => {
      expect(await sut.list(b)).toEqual([]);
      expect(await sut.active(b)).toBeNull();
      expect(await sut.activate(b, 1)).toBe(false);
      expect((await sut.active(a))?.version).toBe(1);
    });
  });

  describe('active', () => {
    it("should reload in another replica when a version is activated elsewhere", async () => {
      const t = newTenantId('r');
      const cfg = { defaultTenant: t, tenants: [t], modelMinTrainingRows: 200 };
      const one = await startTestApp(cfg);
      const two = await startTestApp(cfg);
      try {
        const r1 = one.app.get(ModelRegistryService);
        const r2 = two.app.get(ModelRegistryService);
        await r1.register(t, model(300, 4), 'dataset');
        expect((await r2.active(t))?.version).toBe(1);
        await r1.register(t, model(300, 5), 'dataset');
        let seen: number | undefined;
        for (const deadline = Date.now() + 20_000; seen !== 2 && Date.now() < deadline; ) {
          seen = (await r2.active(t))?.version;
          if (seen !== 2) await new Promise((r) => setTimeout(r, 50));
        }
        expect(seen).toBe(2);
      } finally {
        await one.close();
        await two.close();
      }
    });

    it('should re-check every cached model when its LISTEN connection comes back, not 30 s later', async () => {
      const t = newTenantId('l');
      const cfg = { defaultTenant: t, tenants: [t], modelMinTrainingRows: 200 };
      const one = await startTestApp(cfg);
      const two = await startTestApp(cfg);
      try {
        const r1 = one.app.get(ModelRegistryService);
        const r2 = two.app.get(ModelRegistryService);
        await r1.register(t, model(300, 4), 'dataset');
        expect((await r2.active(t))?.version).toBe(1);
        const db = one.database.dataSource;
        const listeners = async (): Promise<number> =>
          (await db.query(`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN anomaly_detector_model_activated%'`))[0].n;
        await waitFor(async () => (await listeners()) >= 2, 20_000, 'both replicas to listen');
        // The LISTEN connections drop (as in a database outage); replica two serves v1 meanwhile.
        await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN anomaly_detector_model_activated%'`);
        await waitFor(async () => (await listeners()) === 0, 20_000, 'the LISTEN connections to drop');
        expect((await r2.active(t))?.version).toBe(1);
        // Activated while replica two is not listening: its notification is lost.
        await r1.register(t, model(300, 5), 'dataset');
        const seen = await waitFor(
          async () => ((await r2.active(t))?.version === 2 ? Date.now() : undefined),
          20_000,
          'replica two to serve v2 after reconnecting',
        );
        expect(seen).toBeDefined();
      } finally {
        await one.close();
        await two.close();
      }
    });
  });

  describe('importModelFiles', () => {
    it('should import models/<tenant>/model.json at start for a tenant without a model, once', async () => {
      const t = newTenantId('f');
      const dir = mkdtempSync(join(tmpdir(), 'models-'));
      const m = model(400, 6);
      writeFileAtomic(join(dir, t, 'model.json'), JSON.stringify(m.toJSON()));
      const cfg = { defaultTenant: t, tenants: [t], modelsDir: dir, modelMinTrainingRows: 200 };
      const first = await startTestApp(cfg);
      try {
        const registry = first.app.get(ModelRegistryService);
        expect((await registry.list(t)).map((v) => [v.version, v.status, v.source])).toEqual([[1, 'active', 'file']]);
        const probe = normalTraffic(50, { seed: 7 });
        expect((await registry.active(t))?.model.score(probe).map((s) => s.score)).toEqual(m.score(probe).map((s) => s.score));
      } finally {
        await first.close();
      }
      const second = await startTestApp(cfg);
      try {
        expect(await second.app.get(ModelRegistryService).list(t)).toHaveLength(1);
      } finally {
        await second.close();
      }
    });

    it('should skip a corrupt model file without failing start-up', async () => {
      const t = newTenantId('c');
      const dir = mkdtempSync(join(tmpdir(), 'models-'));
      writeFileAtomic(join(dir, t, 'model.json'), '{"format":"nope"}');
      const app2 = await startTestApp({ defaultTenant: t, tenants: [t], modelsDir: dir });
      try {
        expect(await app2.app.get(ModelRegistryService).list(t)).toEqual([]);
      } finally {
        await app2.close();
      }
    });
  });
});
