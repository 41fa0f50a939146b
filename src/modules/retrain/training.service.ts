import { Inject, Injectable, Logger } from '@nestjs/common';
import { existsSync } from 'fs';
import { join } from 'path';
import { Worker } from 'worker_threads';
import { AppConfig } from '../../config/app-config';
import { AnomalyModel, DEFAULT_MODEL_PARAMS, ModelParams } from '../detection/model/anomaly-model';
import { LogEvent } from '../detection/features/log-event';
import { ModelRegistryService, RegisteredModel } from './model-registry.service';
import { ValidationReport } from './model-validation';

export interface Evaluation {
  /** Events carrying an incident label. */
  labelled: number;
  flagged: number;
  truePositives: number;
  precision: number | null;
  recall: number | null;
  /** Recall per incident kind. */
  recallByLabel: Record<string, number>;
}

export interface TrainingResult extends RegisteredModel {
  tenant: string;
  rows: number;
  serviceModels: string[];
  evaluation?: Evaluation;
  model: AnomalyModel;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

const WORKER = join(__dirname, 'training.worker.js');

/** Trains a tenant model from events and registers it. */
@Injectable()
export class TrainingService {
  private readonly logger = new Logger(TrainingService.name);

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
  ) {}

  /**
   * Fits off the event loop, in a worker thread, so that requests keep their latency while a large
   * tenant trains. Where the compiled worker is absent (specs run from TypeScript sources) it fits
   * in-process; the model is the same either way (seeded).
   */
  private async fit(events: LogEvent[], params: ModelParams): Promise<AnomalyModel> {
    if (!existsSync(WORKER) || events.length === 0) return AnomalyModel.train(events, params);
    const n = events.length;
    const payload = {
      params,
      ts: new Float64Array(n),
      service: new Array<string>(n),
      duration: new Float64Array(n),
      status: new Float64Array(n),
      bytes: new Float64Array(n),
    };
    events.forEach((e, i) => {
      payload.ts[i] = e.timestamp.getTime();
      payload.service[i] = e.service;
      payload.duration[i] = e.durationMs ?? NaN;
      payload.status[i] = e.statusCode ?? NaN;
      payload.bytes[i] = e.bytes ?? NaN;
    });
    const worker = new Worker(WORKER);
    try {
      const reply = await new Promise<{ ok: boolean; model?: unknown; error?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`training worker exited with code ${code}`)));
        worker.postMessage(payload, [payload.ts.buffer, payload.duration.buffer, payload.status.buffer, payload.bytes.buffer]);
      });
      if (!reply.ok) throw new Error(reply.error);
      return AnomalyModel.fromJSON(reply.model);
    } finally {
      await worker.terminate();
    }
  }

  params(seed = DEFAULT_MODEL_PARAMS.seed): ModelParams {
    return {
      ...DEFAULT_MODEL_PARAMS,
      contamination: this.config.modelContamination,
      minServiceRows: this.config.modelMinServiceRows,
      seed,
    };
  }

  /**
   * Fits the tenant's model on `events` and registers it as the next version: active when it had
   * enough rows and `check` (champion/challenger validation, when given) passed it, else rejected
   * with the check's failures as the reason. Labels, when given, are only used to report how the
   * model does on them.
   */
  async train(
    tenant: string,
    events: LogEvent[],
    source: string,
    labels?: (string | undefined)[],
    check?: (model: AnomalyModel) => ValidationReport,
    stats?: Record<string, unknown>,
  ): Promise<TrainingResult> {
    const model = await this.fit(events, this.params());
    const validation = check?.(model);
    const registered = await this.registry.register(tenant, model, source, {
      stats,
      validation: validation as unknown as Record<string, unknown> | undefined,
      rejectedReason: validation && !validation.passed ? validation.failures.join('; ') : undefined,
    });
    return {
      ...registered,
      tenant,
      rows: events.length,
      serviceModels: model.serviceNames,
      evaluation: labels?.some(Boolean) ? evaluate(model, events, labels) : undefined,
      model,
    };
  }
}

/** Precision and recall of the model's anomalies against incident labels (events only). */
export function evaluate(model: AnomalyModel, events: LogEvent[], labels: (string | undefined)[]): Evaluation {
  const scores = model.score(events, { explain: false });
  let labelled = 0;
  let flagged = 0;
  let tp = 0;
  const perLabel: Record<string, { n: number; hit: number }> = {};
  scores.forEach((s, i) => {
    const label = labels[i];
    const isAnomaly = s.prediction === -1;
    if (isAnomaly) flagged++;
    if (label) {
      labelled++;
      perLabel[label] ??= { n: 0, hit: 0 };
      perLabel[label].n++;
      if (isAnomaly) {
        tp++;
        perLabel[label].hit++;
      }
    }
  });
  return {
    labelled,
    flagged,
    truePositives: tp,
    precision: flagged ? r3(tp / flagged) : null,
    recall: labelled ? r3(tp / labelled) : null,
    recallByLabel: Object.fromEntries(Object.entries(perLabel).map(([k, v]) => [k, r3(v.hit / v.n)])),
  };
}
