import { parseRetryAfter } from './retry-after';

describe(parseRetryAfter.name, () => {
  it('should read delta-seconds, capped', () => {
    expect(parseRetryAfter('2', 60_000)).toBe(2000);
    expect(parseRetryAfter(' 0.5 ', 60_000)).toBe(500);
    expect(parseRetryAfter('3600', 60_000)).toBe(60_000);
  });

  it('should read an HTTP date against now, never negative', () => {
    expect(parseRetryAfter(new Date(1_005_000).toUTCString(), 60_000, 1_000_000)).toBe(5000);
    expect(parseRetryAfter(new Date(900_000).toUTCString(), 60_000, 1_000_000)).toBe(0);
  });

  it('should give null when absent or unreadable', () => {
    expect(parseRetryAfter(null, 60_000)).toBeNull();
    expect(parseRetryAfter(undefined, 60_000)).toBeNull();
    expect(parseRetryAfter('', 60_000)).toBeNull();
    expect(parseRetryAfter('soon', 60_000)).toBeNull();
    expect(parseRetryAfter('-3', 60_000)).toBeNull();
  });
});
