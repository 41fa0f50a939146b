import { existsSync } from 'fs';
import { join } from 'path';
import { Worker } from 'worker_threads';
import { closeMinutes, CloseInput, CloseOutput } from './close-minutes';
import type { CloseRequest } from './close-minutes.worker';

const WORKER = join(__dirname, 'close-minutes.worker.js');

type Reply = { id: number; ok: true; result: CloseOutput } | { id: number; ok: false; error: string };

/**
 * Runs {@link closeMinutes} in one long-lived worker thread, so that closing a backlog of minutes
 * (a backfill, a restart after downtime: seconds of work) never holds the event loop that answers
 * requests. Requests are queued to the worker in order. Where the compiled worker is absent
 * (specs run from TypeScript sources) it runs in-process, yielding the event loop every few ms;
 * the result is the same either way. A worker that dies fails its pending requests and is
 * replaced on the next one.
 */
export class CloseMinutesRunner {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: CloseOutput) => void; reject: (e: Error) => void }>();

  constructor(private readonly useWorker = existsSync(WORKER)) {}

  async run(input: CloseInput): Promise<CloseOutput> {
    if (!this.useWorker) return closeMinutes(input, yielder());
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const output = await new Promise<CloseOutput>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, input } satisfies CloseRequest);
    });
    // Buffers cross the thread boundary as plain Uint8Arrays.
    for (const m of output.minutes) if (m.sketch) m.sketch = Buffer.from(m.sketch.buffer, m.sketch.byteOffset, m.sketch.byteLength);
    return output;
  }

  /** Stops the worker (pending requests fail). */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private start(): Worker {
    const worker = new Worker(WORKER);
    // The job's timer does not keep the process alive; neither does its worker.
    worker.unref();
    const fail = (e: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.result);
      else p.reject(new Error(r.error));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`series worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

/** A yield for in-process runs: gives requests the event loop once 4 ms of work have passed. */
function yielder(): () => Promise<void> | void {
  let slice = performance.now();
  return () => {
    if (performance.now() - slice < 4) return;
    return new Promise<void>((r) =>
      setImmediate(() => {
        slice = performance.now();
        r();
      }),
    );
  };
}
