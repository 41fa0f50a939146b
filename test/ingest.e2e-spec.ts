import request from 'supertest';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../src/modules/detection/model/anomaly-model';
import { DetectionService } from '../src/modules/detection/detection.service';
import { ModelRegistryService } from '../src/modules/retrain/model-registry.service';
import { normalTraffic } from './factories/log-events';
import { httpEvent, newEventId } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const params = { ...DEFAULT_MODEL_PARAMS, minServiceRows: 100_000 };

describe('POST /ingest', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  const post = (body: unknown, headers: Record<string, string> = {}) => {
    const r = request(sut.http).post('/ingest').set('X-API-Key', key);
    for (const [k, v] of Object.entries(headers)) r.set(k, v);
    return typeof body === 'string' ? r.send(body) : r.send(body as object);
  };

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, ingestMaxItems: 50, ingestMaxBytes: 64 * 1024, ingestMaxMetadataBytes: 1024, requestBodyMaxBytes: 4096 });
  });
  afterAll(() => sut.close());

  it('should accept one event object with 200', async () => {
    const res = await post(httpEvent()).expect(200);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 0, results: [{ index: 0, status: 'accepted', id: expect.any(String), detection: { score: expect.any(Number), prediction: 1 } }] });
  });

  it('should answer a mixed batch with 207, naming the bad item, field and reason', async () => {
    const res = await post([httpEvent(), { service: 'api', timestamp: '2025-11-14T00:00:00Z', duration_ms: -5 }, httpEvent()]).expect(207);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toBe(1);
    expect(res.body.results[1]).toEqual({ index: 1, status: 'rejected', errors: [{ field: 'duration_ms', reason: 'must be >= 0' }] });
  });

  it('should answer 400 with the envelope when no item is valid', async () => {
    const res = await post([{ service: 'api' }, { timestamp: 'yesterday', service: 'api' }]).expect(400);
    expect(res.body.accepted).toBe(0);
    expect(res.body.results.map((r: { errors: { field: string }[] }) => r.errors[0].field)).toEqual(['timestamp', 'timestamp']);
  });

  it('should reject a broken NDJSON line alone', async () => {
    const body = [JSON.stringify(httpEvent()), '{"timestamp": oops', JSON.stringify(httpEvent())].join('\n') + '\n';
    const res = await post(body, { 'Content-Type': 'application/x-ndjson' }).expect(207);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(res.body.results[1].errors).toEqual([{ field: '(line)', reason: 'is not valid JSON' }]);
  });

  it('should answer 400 INVALID_BODY for a body that is not JSON at all', async () => {
    const res = await post('this is not json', { 'Content-Type': 'application/json' }).expect(400);
    expect(res.body.code).toBe('INVALID_BODY');
  });

  it('should answer 415 for an unsupported content type', async () => {
    const res = await post('x', { 'Content-Type': 'text/plain' }).expect(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('should answer 413 over INGEST_MAX_ITEMS and over INGEST_MAX_BYTES, storing nothing', async () => {
    const before = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    const tooMany = await post(Array.from({ length: 51 }, () => httpEvent())).expect(413);
    expect(tooMany.body.code).toBe('PAYLOAD_TOO_LARGE');
    const big = Array.from({ length: 30 }, () => ({ ...httpEvent(), pad: 'x'.repeat(3000) }));
    const tooBig = await post(big).expect(413);
    expect(tooBig.body.code).toBe('PAYLOAD_TOO_LARGE');
    const after = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    expect(after).toBe(before);
  });

  it('should take bulk bodies up to INGEST_MAX_BYTES, beyond the small limit of other routes', async () => {
    const batch = Array.from({ length: 40 }, () => ({ ...httpEvent(), note: 'z'.repeat(500) }));
    expect(JSON.stringify(batch).length).toBeGreaterThan(4096 * 4);
    await post(batch).expect(200);
  });

  it('should reject metadata over INGEST_MAX_METADATA_BYTES per item', async () => {
    const res = await post([{ ...httpEvent(), note: 'y'.repeat(2000) }]).expect(400);
    expect(res.body.results[0].errors[0]).toEqual({ field: '(metadata)', reason: expect.stringContaining('over the limit of 1024') });
  });

  it('should store a retried batch once, by item id, answering with the original results', async () => {
    const ids = [newEventId(), newEventId()];
    const body = [httpEvent({ id: ids[0] }), { id: ids[1], service: 'x' }, httpEvent({ id: ids[1] })];
    const first = await post(body).expect(207);
    const before = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    const second = await post(body).expect(207);
    const after = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    expect(after).toBe(before);
    expect(second.body).toEqual(first.body);
  });

  it('should store an event once when two requests carry it at the same moment', async () => {
    const id = newEventId();
    const before = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    const [r1, r2] = await Promise.all([post([httpEvent({ id })]), post([httpEvent({ id })])]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(r1.body.results[0].id).toBe(id);
    expect(r2.body.results[0].id).toBe(id);
    const after = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    expect(after).toBe(before + 1);
  });

  it('should store a retried request once by Idempotency-Key', async () => {
    const key2 = `retry-${newEventId()}`;
    const body = [httpEvent(), httpEvent({ durationMs: 120 })];
    const first = await post(body, { 'Idempotency-Key': key2 }).expect(200);
    const before = (await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total;
    const second = await post(body, { 'Idempotency-Key': key2 }).expect(200);
    expect((await request(sut.http).get('/metrics').set('X-API-Key', key)).body.events_total).toBe(before);
    expect(second.body.results.map((r: { id: string }) => r.id)).toEqual(first.body.results.map((r: { id: string }) => r.id));
  });
});

describe('Scoring', () => {
  it('should score a new service by its cold-start baseline, then by the model once one is active', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t], modelMinTrainingRows: 100 });
    try {
      const warm = await request(sut.http).post('/ingest').send(Array.from({ length: 10 }, () => httpEvent())).expect(200);
      expect(warm.body.results[0].detection).toMatchObject({ model_version: null, baseline: 'warming', prediction: 1 });
      const normal = Array.from({ length: 60 }, (_, i) => httpEvent({ durationMs: 90 + (i % 20) }));
      const ready = await request(sut.http).post('/ingest').send([...normal, httpEvent({ durationMs: 2000 })]).expect(200);
      const slow = ready.body.results[60].detection;
      expect(slow).toMatchObject({ model_version: null, baseline: 'ready', prediction: -1 });
      expect(slow.explanation.features[0].name).toBe('duration_ms');

      const { version } = await sut.app.get(ModelRegistryService).register(t, AnomalyModel.train(normalTraffic(1000), params), 'dataset');
      const scored = await request(sut.http).post('/ingest').send(httpEvent()).expect(200);
      expect(scored.body.results[0].detection).toMatchObject({ model_version: version });
      expect(scored.body.results[0].detection.baseline).toBeUndefined();

      const list = await request(sut.http).get('/detections').expect(200);
      expect(list.body.items[0]).toMatchObject({ kind: 'event', model_version: null, baseline: true, prediction: -1 });
    } finally {
      await sut.close();
    }
  });

  it('should bring an injected 10x latency event back from /latest-anomalies with an explanation naming duration', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t] });
    try {
      await sut.app.get(ModelRegistryService).register(t, AnomalyModel.train(normalTraffic(2000, { medianMs: 100 }), params), 'dataset');
      const normal = normalTraffic(500, { seed: 11, medianMs: 100 }).map((e) =>
        httpEvent({ durationMs: Math.round(e.durationMs!), at: e.timestamp, bytes: e.bytes }),
      );
      await request(sut.http).post('/ingest').send(normal).expect(200);
      const slow = await request(sut.http).post('/ingest').send(httpEvent({ durationMs: 1000 })).expect(200);
      const id = slow.body.results[0].id;
      const latest = await request(sut.http).get('/latest-anomalies').expect(200);
      expect(Array.isArray(latest.body)).toBe(true);
      const found = latest.body.find((a: { duration_ms: number }) => a.duration_ms === 1000);
      expect(found).toMatchObject({ prediction: -1, kind: 'event', tenant: t, service: 'api', status_code: 200 });
      expect(found.explanation.summary).toMatch(/^duration_ms 1000 /);
      expect(found.explanation.features[0]).toMatchObject({ name: 'duration_ms', value: 1000, p50: expect.any(Number), p99: expect.any(Number) });
      const history = await request(sut.http).get('/detections').expect(200);
      expect(history.body.items.some((d: { event_id: string }) => d.event_id === id)).toBe(true);
    } finally {
      await sut.close();
    }
  });

  it('should raise drift_alert after the traffic shifts', async () => {
    const t = newTenantId();
    const sut = await startTestApp({ defaultTenant: t, tenants: [t] });
    try {
      await sut.app.get(ModelRegistryService).register(t, AnomalyModel.train(normalTraffic(2000), params), 'dataset');
      const asItems = (seed: number, scale: number) =>
        normalTraffic(300, { seed }).map((e) => httpEvent({ durationMs: e.durationMs! * scale, at: e.timestamp, bytes: e.bytes }));
      const same = await request(sut.http).post('/ingest').send(asItems(21, 1)).expect(200);
      expect(same.body.results[299].detection.drift_alert).toBe(false);
      const shifted = await request(sut.http).post('/ingest').send(asItems(22, 3)).expect(200);
      expect(shifted.body.results[299].detection.drift_alert).toBe(true);
      const metrics = await request(sut.http).get('/metrics').expect(200);
      expect(metrics.body.drift.psi.log_duration_ms).toBeGreaterThan(0.2);
      const prom = await request(sut.http).get('/prom').expect(200);
      const gauge = new RegExp(`anomaly_detector_detection_drift_psi\\{tenant="${t}",feature="log_duration_ms"\\} ([0-9.]+)`).exec(prom.text);
      expect(Number(gauge?.[1])).toBeGreaterThan(0.2);
    } finally {
      await sut.close();
    }
  });
});

describe('Anomaly history', () => {
  const [a, b] = [newTenantId('a'), newTenantId('b')];
  const [ka, kb] = [newApiKey(), newApiKey()];
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: a, tenants: [a, b], tenantApiKeys: { [a]: [ka], [b]: [kb] }, storeHistoryLimit: 5 });
    const warmup = Array.from({ length: 40 }, () => httpEvent({ service: 'svc' }));
    // Seven anomalies (server errors), a minute apart.
    const errors = Array.from({ length: 7 }, (_, i) => httpEvent({ service: 'svc', status: 503, at: new Date(Date.UTC(2025, 10, 14, 13, i)) }));
    await request(sut.http).post('/ingest').set('X-API-Key', ka).send(warmup).expect(200);
    await request(sut.http).post('/ingest').set('X-API-Key', ka).send(errors).expect(200);
  });
  afterAll(() => sut.close());

  it('should page newest first with a cursor, without repeats', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await request(sut.http)
        .get(`/detections?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        .set('X-API-Key', ka)
        .expect(200);
      seen.push(...res.body.items.map((d: { timestamp: string }) => d.timestamp));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toHaveLength(7);
    expect([...seen].sort().reverse()).toEqual(seen);
    expect(new Set(seen).size).toBe(7);
  });

  it('should validate list parameters with field reasons', async () => {
    const res = await request(sut.http).get('/detections?limit=5000&kind=weird&since=notadate').set('X-API-Key', ka).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['kind', 'limit', 'since']);
  });

  it('should filter by service and time', async () => {
    const res = await request(sut.http).get('/detections?service=svc&since=2025-11-14T13:05:00Z').set('X-API-Key', ka).expect(200);
    expect(res.body.items).toHaveLength(2);
    const none = await request(sut.http).get('/detections?service=other').set('X-API-Key', ka).expect(200);
    expect(none.body.items).toHaveLength(0);
  });

  it('should not return detections, anomalies or metrics of another tenant', async () => {
    const list = await request(sut.http).get('/detections').set('X-API-Key', kb).expect(200);
    expect(list.body.items).toEqual([]);
    const latest = await request(sut.http).get('/latest-anomalies').set('X-API-Key', kb).expect(200);
    expect(latest.body).toEqual([]);
    const metrics = await request(sut.http).get('/metrics').set('X-API-Key', kb).expect(200);
    expect(metrics.body).toMatchObject({ tenant: b, events_total: 0, anomalies_total: 0 });
    await request(sut.http).get(`/detections?tenant=${a}`).set('X-API-Key', kb).expect(403);
  });

  it('should prune the history to ANOMALY_STORE_HISTORY_LIMIT, oldest first', async () => {
    await sut.app.get(DetectionService).maintain();
    const res = await request(sut.http).get('/detections').set('X-API-Key', ka).expect(200);
    expect(res.body.items.map((d: { timestamp: string }) => d.timestamp)).toEqual(
      [6, 5, 4, 3, 2].map((m) => new Date(Date.UTC(2025, 10, 14, 13, m)).toISOString()),
    );
  });

  it('should expose ingest counters and the score histogram per tenant on /prom', async () => {
    const prom = await request(sut.http).get('/prom').expect(200);
    expect(prom.text).toContain(`anomaly_detector_ingest_events_total{tenant="${a}",outcome="accepted",reason="",source="api"} 47`);
    expect(prom.text).toMatch(new RegExp(`anomaly_detector_anomalies_total\\{tenant="${a}",kind="event",scorer="baseline"\\} 7`));
    expect(prom.text).toContain(`anomaly_detector_event_anomaly_score_count{tenant="${a}",scorer="baseline"} 47`);
  });
});
