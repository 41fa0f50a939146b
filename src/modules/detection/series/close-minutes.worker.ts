import { parentPort } from 'worker_threads';
import { closeMinutes, CloseInput } from './close-minutes';

/** A request to the worker: an id to answer with, and the input. */
export interface CloseRequest {
  id: number;
  input: CloseInput;
}

/**
 * Worker-thread entry of the series job: closes minutes ({@link closeMinutes}) off the service's
 * event loop, one request at a time, answering `{ id, ok, result }` or `{ id, ok: false, error }`.
 */
if (parentPort) {
  parentPort.on('message', (req: CloseRequest) => {
    closeMinutes(req.input).then(
      (result) => parentPort!.postMessage({ id: req.id, ok: true, result }),
      (e: Error) => parentPort!.postMessage({ id: req.id, ok: false, error: e.message }),
    );
  });
}
