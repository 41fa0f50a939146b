import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { AnomalyModel, DEFAULT_MODEL_PARAMS, ModelParams } from '../detection/model/anomaly-model';
import { LogEvent } from '../detection/features/log-event';
import { ModelRegistryService, RegisteredModel } from './model-registry.service';

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

/** Trains a tenant model from events and registers it. */
@Injectable()
export class TrainingService {
  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
  ) {}

  params(seed = DEFAULT_MODEL_PARAMS.seed): ModelParams {
    return {
      ...DEFAULT_MODEL_PARAMS,
      contamination: this.config.modelContamination,
      minServiceRows: this.config.modelMinServiceRows,
      seed,
    };
  }

  /**
   * Fits the tenant's model on `events` and registers it as the next version (active when it had
   * enough rows). Labels, when given, are only used to report how the model does on them.
   */
  async train(tenant: string, events: LogEvent[], source: string, labels?: (string | undefined)[]): Promise<TrainingResult> {
    const model = AnomalyModel.train(events, this.params());
    const registered = await this.registry.register(tenant, model, source);
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
