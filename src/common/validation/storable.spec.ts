import { jsonDepthExceeds, jsonTextDepthExceeds, jsonValueProblem, parseStorableDate, timeWindowReason, unstorableStringReason } from './storable';

describe('storable values', () => {
  describe(unstorableStringReason.name, () => {
    it.each([
      ['plain text', 'hello', undefined],
      ['a paired surrogate (emoji)', 'ok \u{1F600}', undefined],
      ['a NUL', 'a\u0000b', 'NUL'],
      ['a lone high surrogate', 'a\ud800b', 'surrogate'],
      ['a lone high surrogate at the end', 'a\ud83d', 'surrogate'],
      ['a lone low surrogate', '\udc00', 'surrogate'],
    ])('should judge %s', (_n, s, expected) => {
      const sut = unstorableStringReason(s);
      if (expected === undefined) expect(sut).toBeUndefined();
      else expect(sut).toContain(expected);
    });
  });

  describe(jsonValueProblem.name, () => {
    it('should name the path of a bad string inside objects and arrays', () => {
      expect(jsonValueProblem({ a: { b: ['x', 'y\u0000'] } }, '')).toEqual({ field: 'a.b[1]', reason: expect.stringContaining('NUL') });
    });

    it('should find a bad key', () => {
      expect(jsonValueProblem({ ok: 1, 'k\u0000': 1 }, 'meta')).toEqual({ field: 'meta.(key)', reason: expect.stringContaining('key contains a NUL') });
    });

    it('should refuse nesting past the limit without overflowing the stack', () => {
      let deep: unknown = 'leaf';
      for (let i = 0; i < 200_000; i++) deep = [deep];
      expect(jsonValueProblem({ d: deep }, '', 64)?.reason).toBe('is nested deeper than 64 levels');
      expect(jsonDepthExceeds(deep, 1000)).toBe(true);
      expect(jsonDepthExceeds({ a: [{ b: 1 }] }, 3)).toBe(false);
      expect(jsonDepthExceeds({ a: [{ b: {} }] }, 3)).toBe(true);
    });

    it('should take clean values', () => {
      expect(jsonValueProblem({ a: [1, 'x', null, { b: true }] }, '')).toBeUndefined();
    });

    it('should judge each value on its own after a walk stopped early or grew a large stack', () => {
      // The first walk of a value stops at its first problem with values still on its stack.
      const wide = Array.from({ length: 10_000 }, (_, i) => (i === 5 ? 'bad\u0000' : `v${i}`));
      expect(jsonValueProblem({ wide }, '')?.field).toBe('wide[5]');
      expect(jsonValueProblem({ a: ['x'] }, '')).toBeUndefined();
      expect(jsonValueProblem({ k: 'y\u0000' }, '')?.field).toBe('k');
      expect(jsonValueProblem({ wide: wide.filter((v) => !v.includes('\u0000')) }, '')).toBeUndefined();
      expect(jsonValueProblem('z', '')).toBeUndefined();
    });
  });

  describe(jsonTextDepthExceeds.name, () => {
    it('should count brackets outside strings only', () => {
      expect(jsonTextDepthExceeds(Buffer.from('{"a":[{"b":"[[[[[[\\"[["}]}'), 3)).toBe(false);
      expect(jsonTextDepthExceeds(Buffer.from('{"a":[{"b":[1]}]}'), 3)).toBe(true);
      expect(jsonTextDepthExceeds(Buffer.from('['.repeat(500_000) + ']'.repeat(500_000)), 72)).toBe(true);
    });
  });

  describe(parseStorableDate.name, () => {
    it.each([
      ['-200000-01-01T00:00:00Z', 'must be an ISO 8601 date-time string'],
      ['0000-01-01T00:00:00Z', 'must be between 0001-01-01 and 9999-12-31'],
      ['9999-12-31T23:59:59-10:00', 'must be between 0001-01-01 and 9999-12-31'],
      ['2025-13-45T00:00:00Z', 'is not a valid date-time'],
      [12345, 'must be an ISO 8601 date-time string'],
    ])('should refuse %p', (raw, reason) => {
      expect(parseStorableDate(raw)).toEqual({ ok: false, reason });
    });

    it('should read a storable date', () => {
      const sut = parseStorableDate('0001-01-01T00:00:00Z');
      expect(sut.ok && sut.date.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    });
  });

  describe(timeWindowReason.name, () => {
    const w = { now: new Date('2026-01-10T00:00:00Z'), maxAgeMs: 7 * 86400_000, futureGraceMs: 600_000 };

    it("should word a too-old time as Loki does, naming the oldest acceptable", () => {
      expect(timeWindowReason(new Date('2019-10-11T18:23:58Z'), w)).toBe(
        'too old: 2019-10-11T18:23:58.000Z, oldest acceptable timestamp is: 2026-01-03T00:00:00.000Z',
      );
    });

    it('should refuse a time past the grace and take one inside it', () => {
      expect(timeWindowReason(new Date('2026-01-10T00:10:01Z'), w)).toContain('too new: 2026-01-10T00:10:01.000Z');
      expect(timeWindowReason(new Date('2026-01-10T00:09:59Z'), w)).toBeUndefined();
      expect(timeWindowReason(new Date('2026-01-03T00:00:00Z'), w)).toBeUndefined();
    });
  });
});
