import request from 'supertest';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../../src/modules/detection/model/anomaly-model';
import { ModelRegistryService } from '../../src/modules/retrain/model-registry.service';
import { TestApp } from '../support/test-app';
import { httpEvent } from './http-events';
import { normalTraffic } from './log-events';

/** Normal events (100 ms, 200) for a service: 40 of them warm its cold-start baseline up. */
export const normalEvents = (service: string, n = 40) =>
  Array.from({ length: n }, (_, i) => httpEvent({ service, durationMs: 90 + (i % 20) }));

/** Server errors: anomalous for a model never trained on one, and for a warm baseline while rare. */
export const serverErrors = (service: string, n = 1) =>
  Array.from({ length: n }, () => httpEvent({ service, status: 503 }));

/** Requests far slower than usual. */
export const slowEvents = (service: string, n = 1, durationMs = 20_000) =>
  Array.from({ length: n }, () => httpEvent({ service, durationMs }));

/** Requests far faster than usual (only a model flags these; a baseline ignores speed-ups). */
export const fastEvents = (service: string, n = 1) =>
  Array.from({ length: n }, () => httpEvent({ service, durationMs: 1 }));

/** Activates a model for the tenant trained on normal traffic of these services (100 ms, 200s, 4-6 kB). */
export async function activateModel(app: TestApp, tenant: string, services: string[]): Promise<number> {
  const model = AnomalyModel.train(normalTraffic(1500, { services, medianMs: 100 }), {
    ...DEFAULT_MODEL_PARAMS,
    minServiceRows: 100_000,
  });
  const { version } = await app.app.get(ModelRegistryService).register(tenant, model, 'dataset');
  return version;
}

/** POST /ingest as the tenant's key, expecting every item accepted. */
export async function ingest(
  app: TestApp,
  key: string,
  events: unknown[],
  tenant?: string,
): Promise<{ prediction: number }[]> {
  const res = await request(app.http)
    .post(`/ingest${tenant ? `?tenant=${tenant}` : ''}`)
    .set('X-API-Key', key)
    .send(events)
    .expect(200);
  return res.body.results.map((r: { detection: { prediction: number } }) => r.detection);
}

/** Polls `check` until it returns something truthy (or throws after `timeoutMs`). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
