import { AlertOutboxSender, backoffMs } from './alert-outbox.sender';

describe(AlertOutboxSender.name, () => {
  describe(backoffMs.name, () => {
    it('should double per attempt, jittered between half and all of it', () => {
      expect([1, 2, 3, 4].map((n) => backoffMs(n, 1000, () => 0))).toEqual([500, 1000, 2000, 4000]);
      expect([1, 2, 3, 4].map((n) => backoffMs(n, 1000, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    });

    it('should cap the wait at 15 minutes', () => {
      expect(backoffMs(30, 5000, () => 1)).toBe(900_000);
    });
  });
});
