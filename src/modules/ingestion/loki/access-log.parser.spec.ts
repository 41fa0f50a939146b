import { parseAccessLog } from './access-log.parser';

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';

describe(parseAccessLog.name, () => {
  it('should read nginx combined with $request_time and $upstream_response_time appended', () => {
    const sut = parseAccessLog(`192.0.2.7 - alice [10/Oct/2025:13:55:36 +0200] "GET /api/pages?id=7 HTTP/1.1" 200 5123 "https://ex.org/" "${UA}" 0.234 0.230`);
    expect(sut).toEqual({
      variant: 'combined+request_time+upstream_time',
      time: new Date('2025-10-10T11:55:36.000Z'),
      vhost: undefined,
      remoteAddr: '192.0.2.7',
      remoteUser: 'alice',
      method: 'GET',
      path: '/api/pages',
      query: 'id=7',
      protocol: 'HTTP/1.1',
      status: 200,
      bytes: 5123,
      referer: 'https://ex.org/',
      userAgent: UA,
      durationMs: 234,
      upstreamMs: 230,
      extra: [],
    });
  });

  it("should take nginx's '-' upstream time (no upstream) and retried upstreams (summed)", () => {
    expect(parseAccessLog(`10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 304 0 "-" "curl/8" 0.001 -`)).toEqual(
      expect.objectContaining({ durationMs: 1, variant: 'combined+request_time+upstream_time' }),
    );
    const noUpstream = parseAccessLog(`10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 304 0 "-" "curl/8" 0.001 -`);
    expect([noUpstream?.upstreamMs, noUpstream?.referer]).toEqual([undefined, undefined]);
    expect(parseAccessLog(`10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8" 3.004 1.500, 1.502`)).toMatchObject({ durationMs: 3004, upstreamMs: 3002 });
    expect(parseAccessLog(`10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8" 3.004 1.500 : 0.002`)).toMatchObject({ upstreamMs: 1502 });
    expect(parseAccessLog(`10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8" 3.004 "1.500, 1.502"`)).toMatchObject({ durationMs: 3004 });
  });

  it('should read Apache combined with %D (microseconds) and common with %D', () => {
    expect(parseAccessLog(`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" 1534`)).toMatchObject({
      variant: 'combined+micros',
      time: new Date('2000-10-10T20:55:36.000Z'),
      durationMs: 1.534,
      status: 200,
      bytes: 2326,
      userAgent: 'Mozilla/4.08 [en] (Win98; I ;Nav)',
    });
    expect(parseAccessLog('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "POST /login HTTP/1.1" 503 - 250000')).toMatchObject({ variant: 'common+micros', bytes: 0, durationMs: 250, status: 503, method: 'POST' });
  });

  it('should read the plain common and combined formats without a duration', () => {
    expect(parseAccessLog('127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326')).toMatchObject({ variant: 'common', remoteUser: 'frank', bytes: 2326 });
    expect(parseAccessLog(`::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/2.0" 404 153 "-" "${UA}"`)).toMatchObject({ variant: 'combined', remoteAddr: '::1', status: 404 });
  });

  it('should read a leading virtual host (vhost_combined, nginx $host first)', () => {
    expect(parseAccessLog(`shop.example.com:443 203.0.113.9 - - [01/Nov/2025:00:00:01 +0000] "GET /cart HTTP/1.1" 200 812 "-" "${UA}" 0.050`)).toMatchObject({
      variant: 'vhost_combined+request_time',
      vhost: 'shop.example.com',
      remoteAddr: '203.0.113.9',
      durationMs: 50,
    });
  });

  it('should read rt=/urt= key-value tails and keep unknown extras', () => {
    const sut = parseAccessLog(`1.2.3.4 - - [01/Nov/2025:00:00:01 +0000] "PUT /v1/x HTTP/1.1" 201 12 "-" "${UA}" "198.51.100.1" rt=0.120 uct="0.000" urt="0.118"`);
    expect(sut).toMatchObject({ durationMs: 120, upstreamMs: 118, extra: ['"198.51.100.1"', 'uct="0.000"'] });
  });

  it("should undo Apache's and nginx's escapes inside quoted fields", () => {
    const sut = parseAccessLog(String.raw`1.2.3.4 - - [01/Nov/2025:00:00:01 +0000] "GET /a HTTP/1.1" 200 1 "-" "say \"hi\" \x22there\x22" 0.010`);
    expect(sut?.userAgent).toBe('say "hi" "there"');
  });

  it('should keep an unreadable request line (400 from a TLS handshake) without method or path', () => {
    const sut = parseAccessLog(String.raw`1.2.3.4 - - [01/Nov/2025:00:00:01 +0000] "\x16\x03\x01\x00\xCA\x01" 400 157 "-" "-" 0.002 -`);
    expect([sut?.status, sut?.method, sut?.path, sut?.durationMs]).toEqual([400, undefined, undefined, 2]);
  });

  it.each([
    ['plain text', 'Something failed at [boot] "really"'],
    ['logfmt', 'level=info msg="hello [x]" status=200'],
    ['a JSON line', '{"time": "[10/Oct/2000:13:55:36 -0700]", "msg": "\\"GET\\""}'],
    ['a status that is not one', '1.2.3.4 - - [01/Nov/2025:00:00:01 +0000] "GET / HTTP/1.1" 999 5'],
    ['an unclosed quote', '1.2.3.4 - - [01/Nov/2025:00:00:01 +0000] "GET / HTTP/1.1 200 5'],
  ])('should not take %s for an access log', (_name, line) => {
    expect(parseAccessLog(line)).toBeUndefined();
  });
});
