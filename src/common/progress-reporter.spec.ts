import { ProgressReporter } from './progress-reporter';

describe(ProgressReporter.name, () => {
  const stream = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, out: { isTTY, write: (c: string) => chunks.push(c) > 0 } };
  };

  describe('update', () => {
    it('should write plain lines when not a terminal, at most one per tenth of the work', () => {
      const { chunks, out } = stream(false);
      const sut = new ProgressReporter('train', 1000, 'events', out);
      for (let i = 1; i <= 1000; i++) sut.update(i, 'tenant-a');
      sut.stop();
      expect(chunks.length).toBeLessThanOrEqual(11);
      expect(chunks[chunks.length - 1]).toBe('train: 1000/1000 events (100%) tenant-a\n');
      expect(chunks.every((c) => !c.includes('\r') && !c.includes('\x1b'))).toBe(true);
    });

    it('should draw a live bar on a terminal', () => {
      const { chunks, out } = stream(true);
      const sut = new ProgressReporter('replay', 4, 'files', { ...out, ...{ columns: 120, cursorTo: () => true, clearLine: () => true } } as never);
      sut.update(2, 'a.csv');
      sut.stop();
      const drawn = chunks.join('');
      expect(drawn).toContain('replay [');
      expect(drawn).toContain('4/4 files');
    });
  });
});
