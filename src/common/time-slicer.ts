import { setImmediate as nextTurn } from 'timers/promises';

/**
 * Cooperative multitasking for long loops on the main thread: call {@link TimeSlicer.yield} often
 * (it is cheap); once the current slice has run `sliceMs`, it gives the event loop a turn (other
 * requests, /healthz) before continuing.
 */
export class TimeSlicer {
  private started = performance.now();

  constructor(private readonly sliceMs = 8) {}

  /** Resolves at once inside the slice; after it, on the next turn of the event loop. */
  async yield(): Promise<void> {
    if (performance.now() - this.started < this.sliceMs) return;
    await nextTurn();
    this.started = performance.now();
  }
}
