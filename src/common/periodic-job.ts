export interface PeriodicJobOptions {
  /**
   * Fire once per interval aligned on the clock (at ⌊now / ms⌋·ms + an offset drawn once per job
   * in the first fifth of the interval) instead of every `ms` from start. Jobs that run once per
   * interval across replicas use it, so a replica's timer never straddles an interval boundary.
   */
  aligned?: boolean;
}

/**
 * Runs `work` every `ms` in the background: never two runs at once (a slow run makes the next
 * ticks skip), the timer does not keep the process alive, and `stop()` waits for a run in flight so
 * shutdown never closes the database under it. A run checks {@link PeriodicJob.stopping} between
 * batches to stop early. Errors are the work's own business (it logs them).
 */
export class PeriodicJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;
  private readonly offsetMs: number;

  constructor(
    private readonly ms: number,
    private readonly work: () => Promise<unknown>,
    private readonly options: PeriodicJobOptions = {},
  ) {
    this.offsetMs = Math.floor(Math.random() * ms * 0.2);
  }

  /** True once `stop()` was called: a run in progress should end after its current batch. */
  get stopping(): boolean {
    return this.stopped;
  }

  start(): this {
    if (this.timer || this.ms <= 0 || this.stopped) return this;
    if (this.options.aligned) {
      this.scheduleAligned();
      return this;
    }
    this.timer = setInterval(() => this.fire(), this.ms);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private fire(): void {
    if (!this.running && !this.stopped)
      this.running = this.work()
        .catch(() => undefined)
        .finally(() => (this.running = undefined));
  }

  private scheduleAligned(): void {
    if (this.stopped) return;
    const now = Date.now();
    let at = Math.floor(now / this.ms) * this.ms + this.offsetMs;
    if (at <= now) at += this.ms;
    this.timer = setTimeout(() => {
      this.fire();
      this.scheduleAligned();
    }, at - now);
    this.timer.unref();
  }
}
