import { compressSync } from 'snappy';
import {
  decodePushJson,
  decodePushProtobuf,
  findDuplicateStreamLabels,
  LokiBodyTooLargeError,
  LokiPushError,
  LokiTooManyEntriesError,
  parseStreamLabels,
  readLabelPairs,
  snappyDecode,
} from './loki-push.codec';

const varint = (n: number) => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
};
const field = (n: number, body: Buffer) => Buffer.concat([varint((n << 3) | 2), varint(body.length), body]);
const entry = (seconds: number, line: string, meta: [string, string][] = []) =>
  field(2, Buffer.concat([field(1, Buffer.concat([Buffer.from([0x08]), varint(seconds)])), field(2, Buffer.from(line)), ...meta.map(([k, v]) => field(3, Buffer.concat([field(1, Buffer.from(k)), field(2, Buffer.from(v))])))]));
const stream = (labels: string, ...entries: Buffer[]) => field(1, Buffer.concat([field(1, Buffer.from(labels)), ...entries]));

describe('loki push codec', () => {
  describe(snappyDecode.name, () => {
    it('should decode what a real snappy encoder produced (literals and copies)', () => {
      const raw = Buffer.from('abcdefgh'.repeat(5000) + 'the end');
      expect(snappyDecode(compressSync(raw), 1 << 20).equals(raw)).toBe(true);
    });

    it('should refuse a block declaring more than the limit before expanding anything (413)', () => {
      // 10 MiB of zeros compresses to ~480 KB of copies; the preamble alone decides.
      const bomb = compressSync(Buffer.alloc(10 * 1024 * 1024));
      expect(() => snappyDecode(bomb, 1024 * 1024)).toThrow(LokiBodyTooLargeError);
      expect(() => snappyDecode(bomb, 1024 * 1024)).toThrow('request body too large: 10485760 bytes, limit: 1048576 bytes');
    });

    it('should refuse a 4-byte body that declares 10 MiB and holds nothing (400, not 10 MiB of zeros)', () => {
      const liar = Buffer.concat([varint(10 * 1024 * 1024), Buffer.from([0x00])]).subarray(0, 4);
      expect(liar.length).toBe(4);
      expect(() => snappyDecode(liar, 10 * 1024 * 1024)).toThrow(LokiPushError);
      expect(() => snappyDecode(liar, 10 * 1024 * 1024)).toThrow(/declares 10485760 bytes/);
    });

    it('should refuse blocks whose elements produce more or less than declared, or copy from before the start', () => {
      const good = compressSync(Buffer.from('hello hello hello hello'));
      const longer = Buffer.concat([varint(5), good.subarray(1)]);
      expect(() => snappyDecode(longer, 1000)).toThrow(LokiPushError);
      const copyFromNothing = Buffer.from([4, 0x01 | (0 << 2), 0x05]); // copy-1 of 4 bytes at offset 5 with no output yet
      expect(() => snappyDecode(copyFromNothing, 1000)).toThrow(/corrupt/);
      expect(() => snappyDecode(Buffer.from([0x80, 0x80]), 1000)).toThrow(/preamble/);
    });
  });

  describe(parseStreamLabels.name, () => {
    it.each([
      ['a name twice', '{app="one", app="two"}', "stream '{app=\"one\", app=\"two\"}' has duplicate label name: 'app'"],
      ['no label', '{}', 'error at least one label pair is required per stream'],
      ['a bad name', '{1app="x"}', 'Error parsing labels \'{1app="x"}\' with error: invalid label name "1app"'],
      ['an unclosed set', '{app="x"', 'Error parsing labels \'{app="x"\' with error: labels must be written {name="value", ...}'],
      ['an unquoted value', '{app=x}', 'Error parsing labels \'{app=x}\' with error: the value of label "app" must be quoted'],
      ['a value over 2048 characters', `{a="${'v'.repeat(2049)}"}`, expect.stringContaining('has label value too long')],
      ['16 labels', `{${Array.from({ length: 16 }, (_, i) => `l${i}="v"`).join(', ')}}`, expect.stringContaining('has 16 label names; limit 15')],
    ])('should refuse %s in Loki’s words', (_name, text, error) => {
      expect(parseStreamLabels(text)).toEqual({ error });
    });

    it('should read escapes and backquoted values', () => {
      expect(readLabelPairs('{ a = "x\\"y\\\\z" ,b=`raw\\n` }')).toEqual([
        ['a', 'x"y\\z'],
        ['b', 'raw\\n'],
      ]);
      expect(parseStreamLabels('{service="api",env="prod"}')).toEqual({ labels: { service: 'api', env: 'prod' } });
    });
  });

  describe(decodePushProtobuf.name, () => {
    it('should keep a bad stream apart from the good ones, with entries and structured metadata', () => {
      const sut = decodePushProtobuf(Buffer.concat([stream('{app="one", app="two"}', entry(1, 'a')), stream('{app="ok"}', entry(1_764_000_000, 'line', [['trace_id', 'abc']]))]));
      expect(sut).toEqual([
        { labelText: '{app="one", app="two"}', labels: undefined, error: expect.stringContaining('duplicate label name'), entries: [{ tsNs: '1000000000', line: 'a' }] },
        { labelText: '{app="ok"}', labels: { app: 'ok' }, error: undefined, entries: [{ tsNs: '1764000000000000000', line: 'line', metadata: { trace_id: 'abc' } }] },
      ]);
    });

    it('should stop decoding as soon as the push holds more entries or streams than allowed', () => {
      const many = stream('{app="x"}', ...Array.from({ length: 50 }, (_, i) => entry(i, 'l')));
      expect(decodePushProtobuf(many, 50)[0].entries).toHaveLength(50);
      expect(() => decodePushProtobuf(many, 49)).toThrow(LokiTooManyEntriesError);
      const emptyStreams = Buffer.concat(Array.from({ length: 10 }, () => Buffer.from([0x0a, 0x00])));
      expect(() => decodePushProtobuf(emptyStreams, 9)).toThrow(LokiTooManyEntriesError);
      expect(() => decodePushJson({ streams: [{ stream: { a: 'b' }, values: Array.from({ length: 6 }, () => ['1', 'x']) }] }, new Map(), 5)).toThrow(LokiTooManyEntriesError);
    });

    it('should refuse bytes that are not a PushRequest', () => {
      expect(() => decodePushProtobuf(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))).toThrow(LokiPushError);
    });
  });

  describe(decodePushJson.name, () => {
    it('should refuse only the stream with bad labels or values, and keep structured metadata', () => {
      const body = {
        streams: [
          { stream: { 'bad-name': 'x' }, values: [['1', 'a']] },
          { stream: { app: 'ok' }, values: [['1', 'b', { trace_id: 'abc', n: 5 }], [1, 'not a string ts']] },
          { stream: { app: 'num' }, values: [['1', 'c']] },
          { stream: { app: 'x' }, values: 'nope' },
          { stream: { app: 5 }, values: [] },
        ],
      };
      const sut = decodePushJson(body);
      expect(sut.map((s) => s.error ?? 'ok')).toEqual([
        'Error parsing labels \'{bad-name="x"}\' with error: invalid label name "bad-name"',
        'ok',
        'ok',
        'streams[3].values must be an array of ["<unix ns>", "<line>"]',
        expect.stringContaining('the value of label "app" must be a string'),
      ]);
      expect(sut[1].entries).toEqual([
        { tsNs: '1', line: 'b', metadata: { trace_id: 'abc', n: '5' } },
        { tsNs: '', line: '', metadata: undefined },
      ]);
    });

    it('should refuse a body without a streams array', () => {
      expect(() => decodePushJson({ streams: 5 })).toThrow(LokiPushError);
      expect(() => decodePushJson([])).toThrow(LokiPushError);
    });
  });

  describe(findDuplicateStreamLabels.name, () => {
    it('should find a label written twice in a stream object, which JSON.parse hides', () => {
      const text = '{"streams":[{"stream":{"app":"a"},"values":[["1","{\\"app\\":1,\\"app\\":2}"]]},{"values":[],"stream":{"app":"one","x":[1,{"app":2}],"app":"two"}}]}';
      expect([...findDuplicateStreamLabels(text)]).toEqual([[1, 'app']]);
      const plain = '{"streams":[{"stream":{"app":"one","env":"prod","app":"two"},"values":[["1","x"]]}]}';
      expect(decodePushJson(JSON.parse(plain), findDuplicateStreamLabels(plain))[0].error).toBe(`stream '{app="two", env="prod"}' has duplicate label name: 'app'`);
    });

    it('should read escaped keys and ignore other objects', () => {
      const text = JSON.stringify({ other: { stream: { a: 1 } }, streams: [{ stream: { 'a\u00e9': '1', b: '2' }, values: [] }] }).replace('a\u00e9', 'a\\u00e9');
      expect(findDuplicateStreamLabels(text).size).toBe(0);
      expect([...findDuplicateStreamLabels('{"streams":[{"stream":{"a\\u0062":"1","ab":"2"}}]}')]).toEqual([[0, 'ab']]);
    });
  });
});
