import { parseLogEvent } from '../../detection/features/log-event';
import { isErrorLevel, parseLogLine, textLevel, toDurationMs } from './log-line.parser';
import { epochToDate, parseLineTime } from './line-time';

const entryTime = new Date('2025-11-14T12:00:00.000Z');
const ctx = (labels: Record<string, string> = { service: 'api' }) => ({ labels, entryTime });
/** What POST /ingest would make of the event: the test checks the whole path, not just our object. */
const ingest = (line: string, labels?: Record<string, string>) => {
  const parsed = parseLogLine(line, ctx(labels));
  const r = parseLogEvent(parsed.event, { maxMetadataBytes: 1 << 20 });
  if (!r.ok) throw new Error(`ingest refused ${line}: ${JSON.stringify(r.errors)}`);
  return { format: parsed.format, ...r.event, iso: r.event.timestamp.toISOString(), intake: r.event.metadata.intake as Record<string, unknown> };
};

describe(parseLogLine.name, () => {
  it('should read an nginx access line into service, method, path, status, bytes and duration', () => {
    const sut = ingest('203.0.113.9 - - [14/Nov/2025:11:59:58 +0000] "GET /api/pages?x=1 HTTP/1.1" 502 157 "-" "curl/8.5" 1.250 1.248', { job: 'nginx' });
    expect(sut).toMatchObject({ format: 'access_log', service: 'nginx', method: 'GET', path: '/api/pages', statusCode: 502, bytes: 157, durationMs: 1250, iso: '2025-11-14T11:59:58.000Z' });
    expect(sut.intake).toEqual({ format: 'access_log', variant: 'combined+request_time+upstream_time' });
    expect(sut.metadata).toMatchObject({ remote_addr: '203.0.113.9', query: 'x=1', upstream_response_time_ms: 1248, user_agent: 'curl/8.5' });
  });

  it('should read logfmt with Go durations, numeric strings and its own time', () => {
    const sut = ingest('ts=2025-11-14T11:00:00.5Z level=info msg="request done" method=post path=/v1/orders status=201 duration=1.5s bytes=512 id=req-7', { app: 'orders' });
    expect(sut).toMatchObject({ format: 'logfmt', service: 'orders', method: 'POST', path: '/v1/orders', statusCode: 201, durationMs: 1500, bytes: 512, iso: '2025-11-14T11:00:00.500Z', id: undefined });
    expect(sut.metadata).toMatchObject({ msg: 'request done', line_id: 'req-7', level: 'info' });
  });

  it.each([
    ['duration_ms=12.5', 12.5],
    ['latency=250µs', 0.25],
    ['took=1m2s', 62_000],
    ['request_time=0.120', 120],
    ['elapsed_ms=7', 7],
    ['duration_us=1500', 1.5],
  ])('should read the logfmt duration %s', (field, ms) => {
    expect(ingest(`level=info ${field} status=200`).durationMs).toBeCloseTo(ms, 6);
  });

  it('should turn an error level into status 500 when the line has no status, and say so', () => {
    expect(ingest('level=error msg="db down" duration_ms=30')).toMatchObject({ statusCode: 500, intake: { format: 'logfmt', status_from: 'level' } });
    expect(ingest('{"level":50,"time":1763121600000,"msg":"boom"}')).toMatchObject({ statusCode: 500, iso: '2025-11-14T12:00:00.000Z' });
    expect(ingest('level=warn msg="slow"').statusCode).toBeUndefined();
  });

  it('should keep plain text as the message, with the level it shows and a leading time', () => {
    const sut = ingest('2025-11-14 11:30:00,250 ERROR [worker-3] Payment failed: timeout', { service_name: 'billing' });
    expect(sut).toMatchObject({ format: 'text', service: 'billing', statusCode: 500, iso: '2025-11-14T11:30:00.250Z' });
    expect(sut.metadata.message).toBe('2025-11-14 11:30:00,250 ERROR [worker-3] Payment failed: timeout');
    expect(ingest('just a line').metadata.message).toBe('just a line');
    expect(ingest('just a line')).toMatchObject({ iso: entryTime.toISOString(), statusCode: undefined, durationMs: undefined });
  });

  it('should take the status from the labels when the line has none', () => {
    expect(ingest('upstream reset', { app: 'edge', status_code: '503' })).toMatchObject({ statusCode: 503, intake: { status_from: 'label' } });
    expect(ingest('something broke', { app: 'edge', level: 'error' })).toMatchObject({ statusCode: 500, intake: { status_from: 'level' } });
  });

  it("should read winston-loki's default line: the message and a trailing JSON object of fields", () => {
    const sut = ingest('request handled {"duration_ms":120,"status_code":200,"path":"/x"}', { level: 'info', job: 'undefined' });
    expect(sut).toMatchObject({ format: 'text', service: 'unknown_service', durationMs: 120, statusCode: 200, path: '/x' });
    expect(sut.metadata.message).toBe('request handled');
  });

  it("should read pino's JSON (epoch ms time, msg, numeric level) and pino-http's req/res/responseTime", () => {
    const sut = ingest('{"level":30,"time":1763121000123,"pid":1,"msg":"request completed","req":{"method":"GET","url":"/a?b=1"},"res":{"statusCode":404},"responseTime":17}', { level: 'info', hostname: 'h1' });
    expect(sut).toMatchObject({ format: 'json', service: 'unknown_service', method: 'GET', path: '/a', statusCode: 404, durationMs: 17, iso: '2025-11-14T11:50:00.123Z' });
  });

  it("should read Caddy's and Traefik's JSON access logs", () => {
    const caddy = JSON.stringify({ level: 'info', ts: 1763121600.5, logger: 'http.log.access.log0', msg: 'handled request', request: { method: 'GET', uri: '/shop?x=1', host: 'ex.org' }, duration: 0.0125, size: 812, status: 502 });
    expect(ingest(caddy)).toMatchObject({ method: 'GET', path: '/shop', durationMs: 12.5, bytes: 812, statusCode: 502, iso: '2025-11-14T12:00:00.500Z' });
    const traefik = JSON.stringify({ RequestMethod: 'POST', RequestPath: '/api/x', DownstreamStatus: 201, DownstreamContentSize: 19, Duration: 3_500_000, time: '2025-11-14T11:59:00Z' });
    expect(ingest(traefik)).toMatchObject({ method: 'POST', path: '/api/x', durationMs: 3.5, bytes: 19, statusCode: 201 });
  });

  it('should keep the ingest shape of JSON lines as they are, filling only what is missing', () => {
    const line = JSON.stringify({ service: 'seo', timestamp: '2025-11-14T10:00:00Z', http: { request: { method: 'GET', path: '/p' }, response: { status_code: 200 } }, performance: { duration_ms: 1680 } });
    expect(ingest(line, { service: 'other' })).toMatchObject({ service: 'seo', durationMs: 1680, statusCode: 200, method: 'GET', path: '/p', iso: '2025-11-14T10:00:00.000Z' });
  });

  it.each([
    ['epoch seconds', 1763121600, '2025-11-14T12:00:00.000Z'],
    ['epoch seconds with a fraction', '1763121600.25', '2025-11-14T12:00:00.250Z'],
    ['epoch milliseconds', 1763121600123, '2025-11-14T12:00:00.123Z'],
    ['epoch microseconds', '1763121600123456', '2025-11-14T12:00:00.123Z'],
    ['epoch nanoseconds', '1763121600123456789', '2025-11-14T12:00:00.123Z'],
    ['ISO with an offset', '2025-11-14T13:00:00+01:00', '2025-11-14T12:00:00.000Z'],
  ])('should read a JSON timestamp given as %s', (_name, value, iso) => {
    expect(ingest(JSON.stringify({ timestamp: value, duration_ms: 5 })).iso).toBe(iso);
  });

  it("should fall back to the entry's time when the line's time cannot be read, and keep what it said", () => {
    const sut = ingest(JSON.stringify({ timestamp: 'yesterday', duration_ms: 5 }));
    expect(sut).toMatchObject({ iso: entryTime.toISOString(), intake: { line_time: 'yesterday' } });
    expect(ingest(JSON.stringify({ time: 12, duration_ms: 5 })).iso).toBe(entryTime.toISOString());
  });

  it('should read the real line inside a Docker / Fluent Bit wrapper', () => {
    const sut = ingest(JSON.stringify({ log: '10.0.0.1 - - [14/Nov/2025:11:00:00 +0000] "POST /login HTTP/1.1" 200 10 "-" "ua" 0.300\n', stream: 'stdout', time: '2025-11-14T11:00:00.9Z' }), { container: 'web' });
    expect(sut).toMatchObject({ format: 'access_log', service: 'web', method: 'POST', durationMs: 300, statusCode: 200, intake: { wrapper: 'log' } });
    expect(sut.metadata.stream).toBe('stdout');
  });

  it("should read Vector's JSON event (the line in `message`) but keep a JSON logger's plain message as it is", () => {
    expect(ingest(JSON.stringify({ message: 'level=info duration=5ms status=201', source_type: 'file', host: 'h' }))).toMatchObject({ format: 'logfmt', durationMs: 5, statusCode: 201, intake: { wrapper: 'message' } });
    expect(ingest(JSON.stringify({ level: 'error', message: 'db failed', time: '2025-11-14T11:00:00Z' }))).toMatchObject({ format: 'json', statusCode: 500, metadata: { message: 'db failed' } });
  });

  it('should keep a JSON line nested deeper than storage takes as text, not refuse it', () => {
    const deep = `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`;
    const sut = parseLogLine(deep, ctx());
    expect(sut.format).toBe('text');
    expect(sut.event.message).toBe(deep);
    expect(parseLogLine(`msg ${deep}`, ctx()).event.message).toBe(`msg ${deep}`);
  });

  it('should name the service from the line, then Loki’s service labels, then unknown_service', () => {
    expect(ingest('svc=billing duration_ms=1 status=200', { app: 'x' }).service).toBe('billing');
    expect(ingest('x', { job: 'default/nginx', container: 'c1' }).service).toBe('c1');
    expect(ingest('x', { job: 'default/nginx' }).service).toBe('default_nginx');
    expect(ingest('x', { env: 'prod' }).service).toBe('unknown_service');
  });
});

describe('line helpers', () => {
  it('should tell error levels', () => {
    expect(['error', 'ERR', 'fatal', 'critical', 'panic', 50, '60'].map(isErrorLevel)).toEqual(Array(7).fill(true));
    expect(['info', 'warn', 30, 'errors', undefined].map(isErrorLevel)).toEqual(Array(5).fill(false));
  });

  it('should find a level in free text only where a logger puts it', () => {
    expect(textLevel('2025/11/14 12:00:00 [error] 12#0: *1 connect() failed')).toBe('error');
    expect(textLevel('ERROR 1234 --- [main] o.s.Boot : boom')).toBe('error');
    expect(textLevel('error: cannot open file')).toBe('error');
    expect(textLevel('user reported an error in the form')).toBeUndefined();
  });

  it('should read Go durations and bare numbers', () => {
    expect(toDurationMs('1h2m3.5s')).toBe(3_723_500);
    expect(toDurationMs(2, 1000)).toBe(2000);
    expect(toDurationMs('-1')).toBeUndefined();
    expect(toDurationMs('fast')).toBeUndefined();
  });

  it('should read line times and refuse impossible ones', () => {
    expect(parseLineTime('10/Oct/2000:13:55:36 -0700')?.toISOString()).toBe('2000-10-10T20:55:36.000Z');
    expect(parseLineTime('2025/11/14 12:00:01')?.toISOString()).toBe('2025-11-14T12:00:01.000Z');
    expect(parseLineTime('2025-02-30T00:00:00Z')).toBeUndefined();
    expect(parseLineTime('99999-01-01T00:00:00Z')).toBeUndefined();
    expect(epochToDate('99999999999999999999')?.toISOString()).toBe('5138-11-16T09:46:39.999Z');
  });
});
