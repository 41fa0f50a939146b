import { randomUUID } from 'crypto';
import { Rng } from '../../src/modules/detection/core/rng';

/** encodeURIComponent, with unpaired surrogates written as the (invalid) UTF-8 of a surrogate. */
function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s
      .split(/([\ud800-\udfff])/)
      .map((part) => (/^[\ud800-\udfff]$/.test(part) ? '%ED%A0%80' : encodeURIComponent(part)))
      .join('');
  }
}

/**
 * Seeded generator of hostile inputs for the fuzz spec: values modelled on the kinds of issue 15
 * (characters storage cannot hold, numbers past their column, dates past PostgreSQL's range or the
 * accepted window, deep nesting, wrong JSON types) mixed with plausible ones, so requests reach
 * every layer (validation, services, SQL) rather than stopping at the first check.
 */
export class Hostile {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rng.nextDouble() * n);
  }

  chance(p: number): boolean {
    return this.rng.nextDouble() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  string(): string {
    // Half of the picks are strings storage cannot hold or fields cannot take, half plausible ones.
    if (this.chance(0.5)) return this.pick(['a\u0000b', '\u0000', 'x\ud800', '\udc00y', 'k\ud83d', 'x'.repeat(129), 'y'.repeat(5000)]);
    return this.pick(['', 'web', 'api', 'ok \u{1F600}', '\u202e\u200b', "' OR 1=1 --", '../../etc/passwd', '%FF', '*', 'null', '1e308', '-1', ' ', '\n', 'ü', 'false_positive', 'confirmed', `svc-${this.int(5)}`]);
  }

  number(): number | string {
    if (this.chance(0.4)) return this.pick<number | string>([1e308, -1e308, 1e20, 2 ** 63, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2, '1e400', '10000000000000000000']);
    return this.pick<number | string>([0, -1, 1, 1.5, 100, 200, 503, 599, 600, 99, 1e308, -1e308, 1e20, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 31, -(2 ** 31) - 1, 5e-324, 1e-7, 86_400_000 * 8, '1e400', '10000000000000000000', '-0']);
  }

  date(): string | number {
    const now = Date.now();
    if (this.chance(0.5)) {
      // Outside PostgreSQL's range, JavaScript's, or the accepted window.
      return this.pick<string | number>([
        '-200000-01-01T00:00:00Z',
        '+275760-09-13T00:00:00Z',
        '+010000-01-01T00:00:00Z',
        '0000-01-01T00:00:00Z',
        '-004714-01-01T00:00:00Z',
        '9999-12-31T23:59:59-10:00',
        new Date(now + 365 * 86_400_000).toISOString(),
        new Date(now - 10 * 365 * 86_400_000).toISOString(),
        -8.64e15,
      ]);
    }
    return this.pick<string | number>([
      new Date(now).toISOString(),
      new Date(now - 60_000).toISOString(),
      new Date(now + 5 * 60_000).toISOString(),
      '2025-11-14T00:00:00Z',
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
      '1970-01-01T00:00:00Z',
      '2025-02-30T00:00:00Z',
      '2025-13-45T00:00:00Z',
      'yesterday',
      '',
      '2025-11-14',
      '2025-11-14 12:00',
      now,
    ]);
  }

  /** JSON text nested `depth` levels (arrays or objects). */
  deepText(depth: number): string {
    return this.chance(0.5) ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  }

  /** A random JSON value of bounded size. */
  value(depth = 0): unknown {
    const k = this.int(depth > 2 ? 5 : 8);
    switch (k) {
      case 0:
        return this.string();
      case 1:
        return this.number();
      case 2:
        return this.date();
      case 3:
        return this.pick([null, true, false]);
      case 4:
        return undefined;
      case 5:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) o[this.pick(['a', 'note', 'k\u0000', 'x\ud800', 'performance', 'http', 'tags'])] = this.value(depth + 1);
        return o;
      }
    }
  }

  /** An event in the ingest shape with some fields replaced by hostile values. */
  event(): Record<string, unknown> {
    const e: Record<string, unknown> = {
      timestamp: new Date(Date.now() - this.int(600_000)).toISOString(),
      service: `svc-${this.int(3)}`,
      http: { request: { method: 'GET', path: '/p' }, response: { status_code: 200, bytes: 1000 + this.int(100) } },
      performance: { duration_ms: 50 + this.int(100) },
    };
    for (let i = this.int(4); i > 0; i--) {
      const field = this.pick(['timestamp', 'service', 'id', 'duration_ms', 'status_code', 'bytes', 'user_agent', 'performance', 'http', 'meta', 'tenant']);
      e[field] = field === 'timestamp' ? this.date() : this.value();
    }
    return e;
  }

  /**
   * A hostile value for a field of the given kind (chosen by its name): mostly of the kind the
   * field expects, past its limits, sometimes of another kind altogether.
   */
  forField(name: string): unknown {
    if (this.chance(0.2)) return this.value();
    if (/time|since|until|_at|start|end/.test(name)) return this.date();
    if (/limit|minutes|version|bytes|duration|status|count|seq/.test(name)) return this.number();
    if (name === 'cursor') return this.cursor();
    return this.string();
  }

  /** A copy of `obj` with one field (at a random path, nested ones included) replaced by a hostile value. */
  mutateOne(obj: Record<string, unknown>): Record<string, unknown> {
    const copy = structuredClone(obj);
    const paths: string[][] = [];
    const walk = (o: Record<string, unknown>, prefix: string[]) => {
      for (const [k, v] of Object.entries(o)) {
        paths.push([...prefix, k]);
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) walk(v as Record<string, unknown>, [...prefix, k]);
      }
    };
    walk(copy, []);
    const path = paths.length && this.chance(0.85) ? this.pick(paths) : [this.pick(['extra', 'k\u0000', 'tags', 'note'])];
    let target = copy;
    for (const k of path.slice(0, -1)) target = target[k] as Record<string, unknown>;
    const last = path[path.length - 1];
    target[last] = this.forField(last);
    return copy;
  }

  /** A value for a path parameter, already encoded for the URL (some deliberately undecodable). */
  pathParam(): string {
    return this.pick([randomUUID(), '1', '0', '-1', 'abc', '99999999999999999999', '2147483648', '1.5', '%FF', '%E0%A4%A', encodeURIComponent('a\u0000b'), encodeURIComponent('ü'), 'x'.repeat(300), '%2e%2e', '00000000-0000-0000-0000-000000000000']);
  }

  /** A cursor: well-formed with hostile keys, or not a cursor at all. */
  cursor(): string {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    return this.pick([
      enc({ ts: this.date(), id: randomUUID() }),
      enc({ seq: this.number() }),
      enc({ v: this.number() }),
      enc({ ts: '-200000-01-01T00:00:00Z', id: randomUUID() }),
      enc({ v: 1e20 }),
      enc({ seq: 1e300 }),
      'not-a-cursor',
      '',
      '%FF',
      enc([1, 2]),
    ]);
  }

  /** A query-string value, encoded. */
  queryValue(): string {
    const raw = this.pick<() => unknown>([() => this.string(), () => this.number(), () => this.date(), () => this.cursor()])();
    return this.chance(0.1) ? '%FF' : encode(String(raw));
  }

  /** encodeURIComponent that also writes unpaired surrogates (as invalid UTF-8). */
  encode(s: string): string {
    return encode(s);
  }
}
