import { Presets, SingleBar } from 'cli-progress';

/** Where progress goes: stderr, so stdout keeps only a command's own output. */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

/**
 * Progress of one long CLI step (training tenants, generating or replaying events). On a terminal:
 * a live bar drawn by `cli-progress` (count, percentage, rate, elapsed time, the current item),
 * redrawn every second even while a step blocks in a worker. Elsewhere (a pipe, CI, a log file):
 * plain lines, at most one per tenth of the work and one per step change, so logs stay short.
 */
export class ProgressReporter {
  private readonly bar?: SingleBar;
  private readonly label: string;
  private total: number;
  private value = 0;
  private lastDecile = -1;
  private lastItem = '';

  constructor(
    label: string,
    total: number,
    private readonly unit: string,
    private readonly out: ProgressStream = process.stderr,
  ) {
    this.label = label;
    this.total = Math.max(0, total);
    if (out.isTTY) {
      this.bar = new SingleBar(
        {
          stream: out as NodeJS.WritableStream,
          format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted} | {item}`,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
          fps: 5,
          forceRedraw: true,
          noTTYOutput: false,
        },
        Presets.shades_classic,
      );
      this.bar.start(this.total, 0, { item: '' });
    }
  }

  /** Moves to `value` (absolute) and names the item being worked on. */
  update(value: number, item = ''): void {
    this.value = Math.min(value, this.total || value);
    if (this.bar) {
      this.bar.update(this.value, { item });
      return;
    }
    const decile = this.total ? Math.floor((10 * this.value) / this.total) : 0;
    if (decile !== this.lastDecile || item !== this.lastItem) {
      this.lastDecile = decile;
      this.lastItem = item;
      const pct = this.total ? ` (${Math.round((100 * this.value) / this.total)}%)` : '';
      this.out.write(`${this.label}: ${this.value}/${this.total} ${this.unit}${pct}${item ? ` ${item}` : ''}\n`);
    }
  }

  /** Adds `n` to the count. */
  increment(n = 1, item = ''): void {
    this.update(this.value + n, item);
  }

  /** Changes the total once it is known better (e.g. after reading the input). */
  setTotal(total: number): void {
    this.total = Math.max(0, total);
    this.bar?.setTotal(this.total);
  }

  /** Completes the bar (or the plain lines) and releases the terminal. */
  stop(): void {
    if (this.bar) {
      this.bar.update(this.total);
      this.bar.stop();
    } else if (this.lastDecile !== 10 && this.total) {
      this.update(this.total, this.lastItem);
    }
  }
}
