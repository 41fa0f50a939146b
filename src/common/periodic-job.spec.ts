import { PeriodicJob } from './periodic-job';

describe(PeriodicJob.name, () => {
  afterEach(() => jest.useRealTimers());

  describe('start', () => {
    it('should fire once per clock-aligned interval, within its first fifth, when aligned', async () => {
      jest.useFakeTimers({ now: 1_000_000_700 });
      const fired: number[] = [];
      const sut = new PeriodicJob(1000, async () => void fired.push(Date.now()), { aligned: true }).start();
      for (let i = 0; i < 50; i++) await jest.advanceTimersByTimeAsync(100);
      await sut.stop();
      const buckets = fired.map((t) => Math.floor(t / 1000));
      expect(fired.length).toBeGreaterThanOrEqual(4);
      expect(new Set(buckets).size).toBe(fired.length);
      expect(fired.every((t) => t % 1000 < 200)).toBe(true);
    });

    it('should skip a tick while a run is in progress, and stop() should wait for it', async () => {
      jest.useFakeTimers();
      let release!: () => void;
      let runs = 0;
      const sut = new PeriodicJob(100, () => {
        runs++;
        return new Promise<void>((r) => (release = r));
      }).start();
      await jest.advanceTimersByTimeAsync(350);
      expect(runs).toBe(1);
      let stopped = false;
      const stopping = sut.stop().then(() => (stopped = true));
      expect(sut.stopping).toBe(true);
      await jest.advanceTimersByTimeAsync(10);
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(runs).toBe(1);
    });
  });
});
