import { parseRetryAfter } from './slack.client';

describe('SlackClient', () => {
  describe(parseRetryAfter.name, () => {
    it('should read delta-seconds', () => {
      expect(parseRetryAfter('1')).toBe(1000);
      expect(parseRetryAfter(' 30 ')).toBe(30_000);
    });

    it('should read an HTTP date', () => {
      const now = Date.parse('2025-11-14T12:00:00Z');
      expect(parseRetryAfter('Fri, 14 Nov 2025 12:00:05 GMT', now)).toBe(5000);
      expect(parseRetryAfter('Fri, 14 Nov 2025 11:00:00 GMT', now)).toBe(0);
    });

    it('should answer null when absent or unreadable, and cap long waits at an hour', () => {
      expect(parseRetryAfter(undefined)).toBeNull();
      expect(parseRetryAfter('soon')).toBeNull();
      expect(parseRetryAfter('86400')).toBe(3_600_000);
    });
  });
});
