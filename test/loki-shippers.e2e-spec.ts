import { gzipSync } from 'zlib';
import { AlertsService } from '../src/modules/alerts/alerts.service';
import { SeriesService } from '../src/modules/detection/series.service';
import { encodePushRequest, snappyBlock } from './support/loki-wire';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

/**
 * The requests each log shipper of docs/shippers.md sends, header for header and byte for byte in
 * their framing (protobuf field layout, label syntax, compression, line shape), as their sources
 * write them: Promtail 2.9 (clients/pkg/promtail/client), Grafana Alloy 1.x `loki.write` (the same
 * client, plus `Content-Encoding: snappy`), Vector's `loki` sink (protobuf + snappy by default,
 * `Content-Encoding: snappy`), Fluent Bit's `loki` output (JSON, optionally gzip). None of these
 * tools can be installed here (no npm or Debian package), so their requests are rebuilt; the npm
 * clients (pino-loki, winston-loki) run for real in loki-intake.e2e-spec.ts.
 */
type Row = { service: string; ts: Date; duration_ms: number | null; status_code: number | null; bytes: string | null; prediction: number; metadata: Record<string, unknown> };

const NGINX_LOG_FORMAT = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time';

/** `$time_local` of nginx (and Apache's %t). */
function timeLocal(d: Date): string {
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${mon}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** One nginx access line in NGINX_LOG_FORMAT. */
function nginxLine(at: Date, i: number, seconds: number, status = 200): string {
  return `10.1.${i % 250}.${i % 200} - - [${timeLocal(at)}] "GET /api/items/${i}?page=${i % 3} HTTP/1.1" ${status} ${900 + (i % 50)} "-" "Mozilla/5.0 (Linux)" ${seconds.toFixed(3)} ${(seconds - 0.002).toFixed(3)}`;
}

/** One go-kit / logfmt request line. */
function logfmtLine(at: Date, i: number, ms: number, status = 200): string {
  return `ts=${at.toISOString()} level=${status >= 500 ? 'error' : 'info'} caller=http.go:88 msg="request done" method=POST path=/v1/orders status=${status} duration=${ms}ms bytes=${120 + i} request_id=r${i}`;
}

describe('log shippers: their exact requests', () => {
  const tenant = newTenantId('ship');
  const key = newApiKey();
  let sut: TestApp;
  let base: string;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: tenant, tenants: [tenant], tenantApiKeys: { [tenant]: [key] } });
    await sut.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(sut.app.getHttpServer().address() as { port: number }).port}`;
  });
  afterAll(() => sut.close());

  const rows = async (service: string): Promise<Row[]> =>
    sut.database.dataSource.query(`SELECT service, ts, duration_ms, status_code, bytes, prediction, metadata FROM events WHERE tenant_id = $1 AND service = $2 ORDER BY ts`, [tenant, service]);
  const basic = `Basic ${Buffer.from(`${tenant}:${key}`).toString('base64')}`;
  const send = async (headers: Record<string, string>, body: Buffer) => {
    const res = await fetch(`${base}/loki/api/v1/push`, { method: 'POST', headers, body });
    return { status: res.status, text: await res.text() };
  };
  const recent = (i: number) => new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000 + i * 1000);

  it('Promtail 2.9: protobuf, snappy block, no Content-Encoding, labels as Prometheus prints them', async () => {
    const entries = [0, 1, 2].map((i) => ({ seconds: BigInt(recent(i).getTime() / 1000), nanos: 0, line: nginxLine(recent(i), i, 0.05 + i / 100) }));
    const body = snappyBlock(encodePushRequest([{ labels: '{filename="/var/log/nginx/access.log", job="nginx", service="web-promtail"}', entries }]));
    const res = await send({ 'Content-Type': 'application/x-protobuf', 'User-Agent': 'promtail/2.9.10', Authorization: basic }, body);
    expect(res).toEqual({ status: 204, text: '' });
    expect((await rows('web-promtail')).map((r) => [r.duration_ms, r.status_code, r.metadata.intake])).toEqual([
      [50, 200, { format: 'access_log', variant: 'combined+request_time+upstream_time' }],
      [60, 200, { format: 'access_log', variant: 'combined+request_time+upstream_time' }],
      [70, 200, { format: 'access_log', variant: 'combined+request_time+upstream_time' }],
    ]);
  });

  it('Grafana Alloy 1.x loki.write: as Promtail, with Content-Encoding: snappy and structured metadata', async () => {
    const entries = [0, 1].map((i) => ({ seconds: BigInt(recent(i).getTime() / 1000), nanos: 5, line: logfmtLine(recent(i), i, 30 + i), metadata: [['trace_id', `t${i}`]] as [string, string][] }));
    const body = snappyBlock(encodePushRequest([{ labels: '{job="loki.source.file.app", service_name="orders-alloy"}', entries }]));
    const res = await send({ 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'snappy', 'User-Agent': 'Alloy/v1.5.1 (linux; binary)', Authorization: basic }, body);
    expect(res).toEqual({ status: 204, text: '' });
    const got = await rows('orders-alloy');
    expect(got.map((r) => [r.duration_ms, r.status_code, r.metadata.structured_metadata])).toEqual([
      [30, 200, { trace_id: 't0' }],
      [31, 200, { trace_id: 't1' }],
    ]);
  });

  it("Vector loki sink (defaults: protobuf, snappy, Content-Encoding: snappy; codec json): labels without spaces, the event as JSON", async () => {
    const line = (i: number) =>
      JSON.stringify({ file: '/var/log/app.log', host: 'node-1', message: logfmtLine(recent(i), i, 12), source_type: 'file', timestamp: recent(i).toISOString() });
    const entries = [0, 1].map((i) => ({ seconds: BigInt(recent(i).getTime() / 1000), nanos: 0, line: line(i) }));
    const body = snappyBlock(encodePushRequest([{ labels: '{service="checkout-vector",source="vector"}', entries }]));
    const res = await send({ 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'snappy', 'User-Agent': 'Vector/0.43.1 (x86_64-unknown-linux-gnu)', Authorization: basic }, body);
    expect(res).toEqual({ status: 204, text: '' });
    const got = await rows('checkout-vector');
    expect(got).toHaveLength(2);
    // The event's `message` holds the logfmt line: read as such, the envelope's fields kept.
    expect(got.map((r) => [r.duration_ms, r.status_code, r.metadata.source_type, (r.metadata.intake as { wrapper?: string }).wrapper])).toEqual([
      [12, 200, 'file', 'message'],
      [12, 200, 'file', 'message'],
    ]);
  });

  it("Fluent Bit loki output (JSON, line_format json: the tail record {\"log\": ...}), gzip-compressed", async () => {
    const values = [0, 1, 2].map((i) => [(BigInt(recent(i).getTime()) * 1_000_000n).toString(), JSON.stringify({ log: nginxLine(recent(i), i, 0.2, i === 2 ? 503 : 200) })]);
    const body = gzipSync(Buffer.from(JSON.stringify({ streams: [{ stream: { job: 'fluent-bit', service: 'web-fluentbit' }, values }] })));
    const res = await send({ 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'User-Agent': 'Fluent-Bit', Authorization: basic }, body);
    expect(res).toEqual({ status: 204, text: '' });
    expect((await rows('web-fluentbit')).map((r) => [r.duration_ms, r.status_code, (r.metadata.intake as { wrapper?: string }).wrapper])).toEqual([
      [200, 200, 'log'],
      [200, 200, 'log'],
      [200, 503, 'log'],
    ]);
  });

  it('end to end: an nginx access log and a logfmt log give events with duration and status, and their latency spike is flagged', async () => {
    // Event time: 40 normal requests a minute apart ending now, then a spike of five slow ones.
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 50 * 60_000;
    const at = (i: number) => new Date(t0 + i * 60_000);
    const normal = Array.from({ length: 40 }, (_, i) => i);
    const spike = [40, 41, 42, 43, 44];
    const nginx = [...normal.map((i) => nginxLine(at(i), i, 0.04 + (i % 5) / 1000)), ...spike.map((i) => nginxLine(at(i), i, 2.5, 504))];
    const lf = [...normal.map((i) => logfmtLine(at(i), i, 20 + (i % 4))), ...spike.map((i) => logfmtLine(at(i), i, 1800))];
    const entry = (i: number, line: string) => ({ seconds: BigInt(Math.floor(at(i).getTime() / 1000)), nanos: 0, line });
    // As Promtail sends them, in batches.
    for (const range of [normal, spike]) {
      const body = snappyBlock(
        encodePushRequest([
          { labels: '{job="nginx", service="e2e-nginx"}', entries: range.map((i) => entry(i, nginx[i])) },
          { labels: '{app="e2e-orders", job="orders"}', entries: range.map((i) => entry(i, lf[i])) },
        ]),
      );
      expect(await send({ 'Content-Type': 'application/x-protobuf', Authorization: basic }, body)).toEqual({ status: 204, text: '' });
    }
    const web = await rows('e2e-nginx');
    const orders = await rows('e2e-orders');
    expect(web).toHaveLength(45);
    expect(orders).toHaveLength(45);
    expect(web.every((r) => r.duration_ms !== null && r.status_code !== null)).toBe(true);
    expect(orders.every((r) => r.duration_ms !== null && r.status_code === 200)).toBe(true);
    expect(web[0]).toMatchObject({ ts: at(0), duration_ms: 40, status_code: 200, bytes: '900' });
    expect(web[44]).toMatchObject({ ts: at(44), duration_ms: 2500, status_code: 504 });
    expect(orders[44]).toMatchObject({ ts: at(44), duration_ms: 1800 });
    // Scored like any event: the slow requests stand out from the service's first minutes.
    expect(web.slice(40).every((r) => r.prediction === -1)).toBe(true);
    expect(orders.slice(40).every((r) => r.prediction === -1)).toBe(true);
    expect(orders.slice(30, 40).every((r) => r.prediction === 1)).toBe(true);
    expect(NGINX_LOG_FORMAT).toContain('$request_time $upstream_response_time');
  });

  it('end to end: a latency spike in an nginx and a logfmt log pushed through the intake opens an incident on each service, since its first minute', async () => {
    // 90 minutes of event time at 8 requests a minute, the last 20 ending 5 minutes ago; latency ×6 in minutes 70–75.
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 95 * 60_000;
    const at = (m: number, k: number) => new Date(t0 + m * 60_000 + k * 7_000);
    const slow = (m: number) => (m >= 70 && m < 76 ? 6 : 1);
    for (let from = 0; from < 90; from += 10) {
      const minutes = Array.from({ length: 10 }, (_, j) => from + j);
      const entries = (line: (m: number, k: number, i: number) => string) =>
        minutes.flatMap((m) => Array.from({ length: 8 }, (_, k) => ({ seconds: BigInt(Math.floor(at(m, k).getTime() / 1000)), nanos: 0, line: line(m, k, m * 8 + k) })));
      const body = snappyBlock(
        encodePushRequest([
          { labels: '{job="nginx", service="spike-nginx"}', entries: entries((m, k, i) => nginxLine(at(m, k), i, (0.04 + (i % 7) / 1000) * slow(m))) },
          // (logfmtLine's size grows with its index: keep the index small so the sizes stay level.)
          { labels: '{app="spike-orders", job="orders"}', entries: entries((m, k, i) => logfmtLine(at(m, k), i % 50, (20 + (i % 5)) * slow(m))) },
        ]),
      );
      expect(await send({ 'Content-Type': 'application/x-protobuf', Authorization: basic }, body)).toEqual({ status: 204, text: '' });
    }
    await sut.app.get(SeriesService).closeTenant(tenant);
    await sut.app.get(AlertsService).tick();
    type Listed = { items: { service: string; started_at: string; signals: { signal: string }[] }[] };
    const { items } = (await (await fetch(`${base}/incidents?limit=100`, { headers: { 'X-API-Key': key } })).json()) as Listed;
    for (const service of ['spike-nginx', 'spike-orders']) {
      const found = items.filter((i) => i.service === service);
      expect(found).toHaveLength(1);
      expect(found[0].started_at).toBe(new Date(t0 + 70 * 60_000).toISOString());
      expect(found[0].signals.map((x) => x.signal)).toContain('latency');
    }
  });
});
