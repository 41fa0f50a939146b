import request from 'supertest';
import winston from 'winston';
import LokiTransport from 'winston-loki';
import pino from 'pino';
import { deflateRawSync, deflateSync, gzipSync } from 'zlib';
import { encodePushRequest, snappyBlock, snappyLiteralBlock, uvarint, WireEntry } from './support/loki-wire';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

// pino-loki ships an ESM and a CommonJS build; this is the CommonJS one.
const pinoLoki = require('pino-loki').default as (o: Record<string, unknown>) => NodeJS.WritableStream & { end(): void };

type Row = { id: string; service: string; ts: Date; duration_ms: number | null; status_code: number | null; bytes: string | null; score: number | null; metadata: Record<string, unknown> };

/** Polls until `check` holds or the deadline passes (the shippers send in the background). */
async function waitFor<T>(read: () => Promise<T>, check: (v: T) => boolean, deadlineMs = 20_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  let v = await read();
  while (!check(v) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    v = await read();
  }
  return v;
}

const nowSec = () => Math.floor(Date.now() / 1000);
const nsAgo = (ms: number) => (BigInt(Date.now() - ms) * 1_000_000n).toString();

describe('POST /loki/api/v1/push: Loki semantics', () => {
  const [a, b] = [newTenantId('a'), newTenantId('b')];
  const [ka, kb] = [newApiKey(), newApiKey()];
  let sut: TestApp;
  let base: string;

  beforeAll(async () => {
    sut = await startTestApp({ multiTenantEnabled: true, defaultTenant: a, tenants: [a, b], tenantApiKeys: { [a]: [ka], [b]: [kb] }, lokiMaxLineBytes: 8192 });
    await sut.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(sut.app.getHttpServer().address() as { port: number }).port}`;
  });
  afterAll(() => sut.close());

  const rows = async (tenant: string, service: string): Promise<Row[]> =>
    sut.database.dataSource.query(`SELECT id, service, ts, duration_ms, status_code, bytes, score, metadata FROM events WHERE tenant_id = $1 AND service = $2 ORDER BY ts, id`, [tenant, service]);
  type Reply = { status: number; text: string; body: Record<string, unknown> & { details: { field: string; reason: string }[] } };
  /** fetch, not supertest (which would serialise a Buffer sent as application/json); `.expect(status)` as in supertest. */
  const post = (body: Buffer | string, headers: Record<string, string>, key = ka) => {
    const reply: Promise<Reply> = fetch(`${base}/loki/api/v1/push`, { method: 'POST', headers: { Authorization: `Basic ${Buffer.from(`${a}:${key}`).toString('base64')}`, ...headers }, body }).then(
      async (res) => {
        const text = await res.text();
        return { status: res.status, text, body: text ? JSON.parse(text) : {} };
      },
    );
    return Object.assign(reply, {
      expect: async (status: number): Promise<Reply> => {
        const r = await reply;
        if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text}`);
        return r;
      },
    });
  };
  const proto = (streams: { labels: string; entries: WireEntry[] }[], headers: Record<string, string> = {}, key = ka) =>
    post(snappyLiteralBlock(encodePushRequest(streams)), { 'Content-Type': 'application/x-protobuf', ...headers }, key);
  const json = (streams: unknown, headers: Record<string, string> = {}, key = ka) => post(JSON.stringify({ streams }), { 'Content-Type': 'application/json', ...headers }, key);

  it('cases/01: should take protobuf + snappy with and without Content-Encoding: snappy (204 both times)', async () => {
    const s = [{ labels: '{service="vector-app"}', entries: [{ seconds: nowSec(), nanos: 11, line: JSON.stringify({ duration_ms: 90, status_code: 200 }) }] }];
    await proto(s).expect(204);
    await proto([{ ...s[0], entries: [{ ...s[0].entries[0], nanos: 12 }] }], { 'Content-Encoding': 'snappy' }).expect(204);
    expect((await rows(a, 'vector-app')).map((r) => [r.duration_ms, r.status_code])).toEqual([
      [90, 200],
      [90, 200],
    ]);
  });

  it('should take gzip and deflate (zlib or raw) on JSON and protobuf, and JSON marked snappy whether compressed or not', async () => {
    const t = nowSec();
    const pb = (nanos: number) => snappyBlock(encodePushRequest([{ labels: '{service="enc"}', entries: [{ seconds: t, nanos, line: `duration_ms=${nanos} status=200` }] }]));
    const js = (nanos: number) => Buffer.from(JSON.stringify({ streams: [{ stream: { service: 'enc' }, values: [[(BigInt(t) * 1_000_000_000n + BigInt(nanos)).toString(), `duration_ms=${nanos} status=200`]] }] }));
    const PB = { 'Content-Type': 'application/x-protobuf' };
    const JS = { 'Content-Type': 'application/json' };
    await post(gzipSync(pb(1)), { ...PB, 'Content-Encoding': 'gzip' }).expect(204);
    await post(deflateSync(pb(2)), { ...PB, 'Content-Encoding': 'deflate' }).expect(204);
    await post(deflateRawSync(pb(3)), { ...PB, 'Content-Encoding': 'deflate' }).expect(204);
    const r4 = await post(gzipSync(js(4)), { ...JS, 'Content-Encoding': 'gzip' });
    expect([r4.status, r4.body]).toEqual([204, {}]);
    await post(deflateRawSync(js(5)), { ...JS, 'Content-Encoding': 'deflate' }).expect(204);
    await post(js(6), { ...JS, 'Content-Encoding': 'snappy' }).expect(204);
    await post(snappyBlock(js(7)), { ...JS, 'Content-Encoding': 'snappy' }).expect(204);
    expect((await rows(a, 'enc')).map((r) => r.duration_ms).sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const bad = await post(pb(8), { ...PB, 'Content-Encoding': 'br' }).expect(415);
    expect(bad.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('should answer a snappy bomb with 413 before expanding it, and a 4-byte body declaring 10 MiB with 400', async () => {
    // INGEST_MAX_BYTES is 10 MiB here: 11 MiB of zeros is ~530 KB compressed and declares itself too large.
    const bomb = snappyBlock(Buffer.alloc(11 * 1024 * 1024));
    const tooLarge = await post(bomb, { 'Content-Type': 'application/x-protobuf' }).expect(413);
    expect(tooLarge.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'request body too large: 11534336 bytes, limit: 10485760 bytes' });
    const liar = uvarint(10 * 1024 * 1024);
    expect(liar.length).toBe(4);
    const lying = await post(liar, { 'Content-Type': 'application/x-protobuf' }).expect(400);
    expect(lying.body).toMatchObject({ code: 'INVALID_BODY', message: expect.stringContaining('snappy: corrupt input') });
    const gzipBomb = gzipSync(Buffer.alloc(11 * 1024 * 1024, '{'));
    await post(gzipBomb, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }).expect(413);
  });

  it('should answer 413 to a push of more entries than INGEST_MAX_ITEMS, counted while decoding (a small body of tiny entries)', async () => {
    const entries = Array.from({ length: sut.config.ingestMaxItems + 1 }, () => ({ seconds: 1, line: '' }));
    const body = snappyBlock(encodePushRequest([{ labels: '{app="many"}', entries }]));
    expect(body.length).toBeLessThan(10_000);
    const res = await post(body, { 'Content-Type': 'application/x-protobuf' }).expect(413);
    expect(res.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: `The push holds more than ${sut.config.ingestMaxItems} entries or streams (INGEST_MAX_ITEMS)` });
  });

  it('cases/10: should refuse streams with a duplicate label name or no label, by name, and store the valid stream of the same push', async () => {
    const s = nowSec();
    const line = JSON.stringify({ duration_ms: 100, status_code: 200 });
    const res = await proto([
      { labels: '{app="one", app="two"}', entries: [{ seconds: s, nanos: 7, line }] },
      { labels: '{}', entries: [{ seconds: s, nanos: 9, line: JSON.stringify({ service: 'nolabels', duration_ms: 100 }) }] },
      { labels: '{app="valid-ten"}', entries: [{ seconds: s, nanos: 10, line }] },
    ]).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.message).toBe(
      `1 errors like: stream '{app="one", app="two"}' has duplicate label name: 'app'; 1 errors like: error at least one label pair is required per stream`,
    );
    expect(res.body.details).toEqual([
      { field: 'streams[0]', reason: `stream '{app="one", app="two"}' has duplicate label name: 'app'` },
      { field: 'streams[1]', reason: 'error at least one label pair is required per stream' },
    ]);
    expect(await rows(a, 'one')).toEqual([]);
    expect(await rows(a, 'two')).toEqual([]);
    expect(await rows(a, 'nolabels')).toEqual([]);
    expect(await rows(a, 'valid-ten')).toHaveLength(1);
  });

  it('should refuse only the JSON stream with a bad label name or a label written twice', async () => {
    const ns = nsAgo(1000);
    const body = `{"streams":[{"stream":{"app":"j1","app":"j2"},"values":[["${ns}","x=1 y=2"]]},{"stream":{"bad-name":"x","app":"j3"},"values":[["${ns}","a"]]},{"stream":{"app":"j-ok"},"values":[["${ns}","level=info duration_ms=3"]]}]}`;
    const res = await post(body, { 'Content-Type': 'application/json' }).expect(400);
    expect(res.body.details.map((d: { reason: string }) => d.reason)).toEqual([
      `stream '{app="j2"}' has duplicate label name: 'app'`,
      `Error parsing labels '{app="j3", bad-name="x"}' with error: invalid label name "bad-name"`,
    ]);
    expect((await rows(a, 'j-ok')).map((r) => r.duration_ms)).toEqual([3]);
    expect([...(await rows(a, 'j2')), ...(await rows(a, 'j3'))]).toEqual([]);
  });

  it('cases/08: should keep and score a 5xx line with a 19.5 KB stack trace, its stack truncated and flagged', async () => {
    const stack = 'Error: upstream timeout\n' + '    at handler (/srv/app/api.js:42:13)\n'.repeat(500);
    const line = JSON.stringify({ duration_ms: 900, status_code: 500, stack });
    expect(line.length).toBeGreaterThan(19_000);
    await json([{ stream: { app: 'api-08' }, values: [[nsAgo(0), line]] }]).expect(204);
    const [row] = await rows(a, 'api-08');
    expect(row).toMatchObject({ duration_ms: 900, status_code: 500, score: expect.any(Number) });
    const meta = row.metadata as { stack: string; intake: { truncated: { fields: string[]; metadata_bytes: number } } };
    expect(meta.stack.startsWith('Error: upstream timeout\n    at handler')).toBe(true);
    expect(meta.stack.endsWith('…[truncated]')).toBe(true);
    expect(meta.intake.truncated).toEqual({ fields: ['stack'], metadata_bytes: expect.any(Number) });
    expect(Buffer.byteLength(JSON.stringify(row.metadata))).toBeLessThanOrEqual(sut.config.ingestMaxMetadataBytes);
  });

  it('should truncate and flag a line over LOKI_MAX_LINE_BYTES instead of dropping it', async () => {
    const line = `2026-01-01T00:00:00Z ERROR worker crashed ${'x'.repeat(20_000)}`;
    await json([{ stream: { app: 'long-line' }, values: [[nsAgo(0), line]] }]).expect(204);
    const [row] = await rows(a, 'long-line');
    expect(row).toMatchObject({ status_code: 500, metadata: { intake: { format: 'text', status_from: 'level', truncated: { line_bytes: Buffer.byteLength(line), kept_bytes: 8192 } } } });
    expect((row.metadata.message as string).length).toBe(8192);
    const prom = await request(sut.http).get('/prom').expect(200);
    expect(prom.text).toMatch(new RegExp(`anomaly_detector_loki_intake_lines_total\\{tenant="${a}",outcome="truncated"\\} [1-9]`));
  });

  it('should take lines whose own timestamp is an epoch number, and entries with structured metadata', async () => {
    const ms = Date.now() - 5000;
    await json([
      {
        stream: { app: 'epochs' },
        values: [
          [nsAgo(0), JSON.stringify({ timestamp: ms, duration_ms: 1 })],
          [nsAgo(1), JSON.stringify({ timestamp: Math.floor(ms / 1000), duration_ms: 2 })],
          [nsAgo(2), `ts=${BigInt(ms) * 1_000_000n} duration_ms=3`, { trace_id: 'abc' }],
        ],
      },
    ]).expect(204);
    const got = await rows(a, 'epochs');
    expect(got.map((r) => [r.duration_ms, r.ts.getTime()])).toEqual(
      expect.arrayContaining([
        [1, ms],
        [2, Math.floor(ms / 1000) * 1000],
        [3, ms],
      ]),
    );
    expect(got.find((r) => r.duration_ms === 3)?.metadata.structured_metadata).toEqual({ trace_id: 'abc' });
  });

  it('should refuse an entry whose timestamp no date can hold, and an entry that is not ["<ns>", "<line>"], alone', async () => {
    const res = await proto([{ labels: '{app="ts-range"}', entries: [{ seconds: 2n ** 62n, line: 'x' }, { seconds: nowSec(), line: 'fine' }] }]).expect(400);
    expect(res.body.details).toEqual([{ field: 'streams[0].values[0]', reason: expect.stringMatching(/^entry for stream '\{app="ts-range"\}' has timestamp too new: /) }]);
    const res2 = await json([{ stream: { app: 'ts-range' }, values: [[123, 'x'], [nsAgo(0), 'fine too']] }]).expect(400);
    expect(res2.body.details[0].field).toBe('streams[0].values[0]');
    expect((await rows(a, 'ts-range')).map((r) => r.metadata.message)).toEqual(expect.arrayContaining(['fine', 'fine too']));
  });

  it("should refuse entries older than INGEST_MAX_AGE_HOURS or past the future grace in Loki's words, and store the rest", async () => {
    const strict = await startTestApp({ defaultTenant: a, tenants: [a], tenantApiKeys: { [a]: [ka] }, ingestMaxAgeHours: 168, ingestFutureGraceSeconds: 600 });
    try {
      const old = Date.UTC(2019, 9, 11, 18, 23, 58);
      const body = snappyLiteralBlock(
        encodePushRequest([
          {
            labels: '{app="window-16"}',
            entries: [
              { seconds: old / 1000, line: 'level=info duration_ms=1' },
              { seconds: nowSec() + 3600, line: 'level=info duration_ms=2' },
              { seconds: nowSec(), line: 'level=info duration_ms=3' },
              { seconds: nowSec(), nanos: 1, line: `ts=2019-10-11T18:23:58Z level=info duration_ms=4` },
            ],
          },
        ]),
      );
      const res = await request(strict.http).post('/loki/api/v1/push').set('X-API-Key', ka).set('Content-Type', 'application/x-protobuf').send(body).expect(400);
      const reasons = (res.body.details as { field: string; reason: string }[]).map((d) => [d.field, d.reason]);
      expect(reasons).toEqual([
        ['streams[0].values[0]', expect.stringMatching(/^entry for stream '\{app="window-16"\}' has timestamp too old: 2019-10-11T18:23:58\.000Z, oldest acceptable timestamp is: /)],
        ['streams[0].values[1]', expect.stringMatching(/^entry for stream '\{app="window-16"\}' has timestamp too new: /)],
        ['streams[0].values[3]', expect.stringContaining('refused: timestamp too old: 2019-10-11T18:23:58.000Z')],
      ]);
      const stored = await strict.database.dataSource.query(`SELECT duration_ms FROM events WHERE tenant_id = $1 AND service = 'window-16'`, [a]);
      expect(stored).toEqual([{ duration_ms: 3 }]);
    } finally {
      await strict.close();
    }
  });

  it('should store a retried push once', async () => {
    const streams = [{ stream: { app: 'retry' }, values: [[nsAgo(0), 'GET /x 200'], [nsAgo(1), 'GET /y 200']] }];
    await json(streams).expect(204);
    await json(streams).expect(204);
    expect(await rows(a, 'retry')).toHaveLength(2);
  });

  it('should not store lines in another tenant than the key’s, nor let one tenant see the other’s', async () => {
    await json([{ stream: { app: 'iso-16' } , values: [[nsAgo(0), 'level=info duration_ms=4']] }], {}, kb).expect(204);
    expect(await rows(b, 'iso-16')).toHaveLength(1);
    expect(await rows(a, 'iso-16')).toEqual([]);
    await request(sut.http).post(`/loki/api/v1/push?tenant=${b}`).set('X-API-Key', ka).set('Content-Type', 'application/json').send('{"streams":[]}').expect(403);
  });

  describe('shipper clients with their default options', () => {
    it('winston-loki: 100 of 100 lines stored and scored (protobuf + snappy, plain-text lines with a JSON tail)', async () => {
      const transport = new LokiTransport({ host: base, basicAuth: `${b}:${kb}` });
      // With `snappy` installed (it is), winston-loki sends protobuf: check this run does.
      expect((transport as unknown as { batcher: { contentType: string } }).batcher.contentType).toBe('application/x-protobuf');
      const logger = winston.createLogger({ transports: [transport] });
      const before = (await rows(b, 'unknown_service')).length;
      for (let i = 0; i < 100; i++) {
        if (i % 10 === 9) logger.error(`payment failed for order ${i}`);
        else logger.info('request handled', { duration_ms: 80 + (i % 7), status_code: 200, path: `/orders/${i}` });
      }
      await (transport as unknown as { flush(): Promise<void> }).flush();
      const got = await waitFor(() => rows(b, 'unknown_service'), (r) => r.length - before >= 100);
      const mine = got.filter((r) => (r.metadata.intake as { format?: string })?.format === 'text').slice(-100);
      expect(mine).toHaveLength(100);
      expect(mine.every((r) => typeof r.score === 'number')).toBe(true);
      expect(mine.filter((r) => r.status_code === 500)).toHaveLength(10);
      expect(mine.filter((r) => r.duration_ms !== null)).toHaveLength(90);
      await (transport as unknown as { close(): Promise<void> }).close();
    });

    it('pino-loki: 100 of 100 lines stored and scored (JSON, pino lines)', async () => {
      const stream = pinoLoki({ host: base, basicAuth: { username: b, password: kb } });
      const log = pino({ name: 'pino-svc' }, stream);
      for (let i = 0; i < 100; i++) {
        // Distinct lines: Loki (and so the intake) keeps one of identical lines with the same timestamp.
        if (i % 20 === 0) log.error({ err: { message: 'db timeout' }, attempt: i }, 'query failed');
        else log.info({ responseTime: 20 + (i % 5), res: { statusCode: 200 }, req: { method: 'GET', url: `/items/${i}` } }, 'request completed');
      }
      stream.end();
      const got = await waitFor(() => rows(b, 'unknown_service'), (r) => r.filter((x) => x.metadata.name === 'pino-svc').length >= 100);
      const mine = got.filter((r) => r.metadata.name === 'pino-svc');
      expect(mine).toHaveLength(100);
      expect(mine.every((r) => typeof r.score === 'number')).toBe(true);
      expect(mine.filter((r) => r.status_code === 500)).toHaveLength(5);
      expect(mine.filter((r) => r.duration_ms !== null && r.status_code === 200)).toHaveLength(95);
    });
  });
});
