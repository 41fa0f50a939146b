/**
 * Runs `work` every `ms` in the background: never two runs at once (a slow run makes the next
 * ticks skip), the timer does not keep the process alive, and `stop()` waits for a run in flight so
 * shutdown never closes the database under it. Errors are the work's own business (it logs them).
 */
export class PeriodicJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly ms: number,
    private readonly work: () => Promise<unknown>,
  ) {}

  start(): this {
    if (this.timer || this.ms <= 0) return this;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.work().catch(() => undefined).finally(() => (this.running = undefined));
    }, this.ms);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
