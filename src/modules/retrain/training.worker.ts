import { parentPort } from 'worker_threads';
import { AnomalyModel, ModelParams } from '../detection/model/anomaly-model';

/** A row of the columnar training payload (timestamps as epoch ms, undefined as null). */
export interface TrainingPayload {
  params: ModelParams;
  ts: Float64Array;
  service: string[];
  duration: Float64Array;
  status: Float64Array;
  bytes: Float64Array;
}

/**
 * Worker-thread entry: trains a model off the service's event loop (fitting and scoring the
 * training set takes seconds on a large tenant) and returns it serialised.
 */
if (parentPort) {
  parentPort.on('message', (p: TrainingPayload) => {
    try {
      const events = p.service.map((service, i) => ({
        timestamp: new Date(p.ts[i]),
        service,
        durationMs: Number.isNaN(p.duration[i]) ? undefined : p.duration[i],
        statusCode: Number.isNaN(p.status[i]) ? undefined : p.status[i],
        bytes: Number.isNaN(p.bytes[i]) ? undefined : p.bytes[i],
        metadata: {},
      }));
      parentPort!.postMessage({ ok: true, model: AnomalyModel.train(events, p.params).toJSON() });
    } catch (e) {
      parentPort!.postMessage({ ok: false, error: (e as Error).message });
    }
  });
}
