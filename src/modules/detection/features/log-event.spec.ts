import { parseLogEvent } from './log-event';

const opts = { maxMetadataBytes: 1024 };
const seedShape = {
  timestamp: '2025-11-14T00:00:00Z',
  service: 'seo-optimizer',
  http: { request: { method: 'GET', path: '/api/pages' }, response: { status_code: 200, bytes: 5123 } },
  performance: { duration_ms: 1680 },
  seo_context: { generation_strategy: 'LLM_RAG_v2' },
};

describe(parseLogEvent.name, () => {
  it("should read the seed's nested shape and keep the rest as metadata", () => {
    const sut = parseLogEvent(seedShape, opts);
    expect(sut).toEqual({
      ok: true,
      tenant: undefined,
      label: undefined,
      event: expect.objectContaining({
        service: 'seo-optimizer',
        durationMs: 1680,
        statusCode: 200,
        bytes: 5123,
        method: 'GET',
        path: '/api/pages',
        metadata: { http: seedShape.http, performance: seedShape.performance, seo_context: seedShape.seo_context },
      }),
    });
    expect(sut.ok && sut.event.timestamp.toISOString()).toBe('2025-11-14T00:00:00.000Z');
  });

  it('should read the flat fields', () => {
    const sut = parseLogEvent({ timestamp: '2025-11-14T00:00:00.5+01:00', service: 'a', duration_ms: 5, status_code: 503, bytes: 0 }, opts);
    expect(sut.ok && [sut.event.durationMs, sut.event.statusCode, sut.event.bytes]).toEqual([5, 503, 0]);
  });

  it('should report every field problem with its reason', () => {
    const sut = parseLogEvent({ service: 'bad service!', duration_ms: -1, status_code: 99, bytes: 1.5 }, opts);
    expect(sut.ok).toBe(false);
    expect(!sut.ok && sut.errors).toEqual([
      { field: 'timestamp', reason: 'missing' },
      { field: 'service', reason: expect.stringContaining('[A-Za-z0-9_.-]') },
      { field: 'duration_ms', reason: 'must be >= 0' },
      { field: 'status_code', reason: expect.stringContaining('HTTP status') },
      { field: 'bytes', reason: 'must be an integer >= 0' },
    ]);
  });

  it.each([
    ['a string duration', { performance: { duration_ms: '12' } }, 'performance.duration_ms', 'must be a number'],
    ['an infinite duration', { duration_ms: Infinity }, 'duration_ms', 'must be finite'],
    ['a NaN duration', { duration_ms: NaN }, 'duration_ms', 'must be finite'],
    ['a non-ISO timestamp', { timestamp: '14/11/2025' }, 'timestamp', 'must be an ISO 8601 date-time string'],
    ['an impossible date', { timestamp: '2025-13-45T00:00:00Z' }, 'timestamp', 'is not a valid date-time'],
    ['conflicting flat and nested values', { duration_ms: 1, performance: { duration_ms: 2 } }, 'duration_ms', 'conflicts with performance.duration_ms'],
  ])('should reject %s', (_n, patch, field, reason) => {
    const sut = parseLogEvent({ timestamp: '2025-11-14T00:00:00Z', service: 'a', ...patch }, opts);
    expect(!sut.ok && sut.errors).toContainEqual({ field, reason });
  });

  it('should reject metadata over the limit', () => {
    const sut = parseLogEvent({ timestamp: '2025-11-14T00:00:00Z', service: 'a', note: 'x'.repeat(2000) }, opts);
    expect(!sut.ok && sut.errors[0].field).toBe('(metadata)');
  });

  it('should reject anything but an object', () => {
    expect(parseLogEvent([1], opts)).toEqual({ ok: false, errors: [{ field: '(item)', reason: 'must be a JSON object' }] });
  });

  it('should take tenant and label only in dataset mode', () => {
    const item = { ...seedShape, tenant: 'marketing', label: 'latency_spike' };
    const dataset = parseLogEvent(item, { ...opts, datasetFields: true });
    expect(dataset.ok && [dataset.tenant, dataset.label]).toEqual(['marketing', 'latency_spike']);
    const ingest = parseLogEvent(item, opts);
    expect(ingest.ok && ingest.event.metadata.tenant).toBe('marketing');
  });
});

describe(`${parseLogEvent.name} (storable values)`, () => {
  const base = { timestamp: '2025-11-14T00:00:00Z', service: 'a' };

  it.each([
    ['a NUL in metadata', { user_agent: 'curl\u0000x' }, 'user_agent', 'NUL'],
    ['a lone surrogate in a nested field', { http: { request: { path: '/p\ud800' } } }, 'http.request.path', 'surrogate'],
    ['bytes beyond an exact integer (1e20)', { bytes: 1e20 }, 'bytes', 'at most'],
    ['a duration of 1e308', { duration_ms: 1e308 }, 'duration_ms', 'at most'],
    ['a timestamp PostgreSQL cannot hold', { timestamp: '0000-06-01T00:00:00Z' }, 'timestamp', 'between 0001-01-01'],
  ])('should reject %s on its own, naming the field', (_n, patch, field, reason) => {
    const sut = parseLogEvent({ ...base, ...patch }, opts);
    expect(sut.ok).toBe(false);
    expect(!sut.ok && sut.errors).toEqual([{ field, reason: expect.stringContaining(reason) }]);
  });

  it('should reject metadata nested deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 5000; i++) deep = { d: deep };
    const sut = parseLogEvent({ ...base, deep }, { maxMetadataBytes: 1 << 20 });
    expect(!sut.ok && sut.errors[0].reason).toBe('is nested deeper than 64 levels');
  });

  it('should hold live events to the accepted window, and history only to the storable range', () => {
    const window = { now: new Date('2025-11-14T00:00:00Z'), maxAgeMs: 3600_000, futureGraceMs: 600_000 };
    const old = parseLogEvent({ ...base, timestamp: '2025-11-13T00:00:00Z' }, { ...opts, window });
    expect(!old.ok && old.errors).toEqual([{ field: 'timestamp', reason: expect.stringMatching(/^too old: 2025-11-13T00:00:00.000Z, oldest acceptable/) }]);
    const future = parseLogEvent({ ...base, timestamp: '2026-11-14T00:00:00Z' }, { ...opts, window });
    expect(!future.ok && future.errors[0].reason).toMatch(/^too new/);
    expect(parseLogEvent({ ...base, timestamp: '2025-11-14T00:05:00Z' }, { ...opts, window }).ok).toBe(true);
    expect(parseLogEvent({ ...base, timestamp: '2019-10-11T00:00:00Z' }, opts).ok).toBe(true);
  });
});
