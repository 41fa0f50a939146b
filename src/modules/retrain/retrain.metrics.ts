import { makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import { labelCombinations, makeZeroedCounterProvider, METRIC_PREFIX } from '../observability/metric-names';

export const MODEL_ACTIVE_VERSION = `${METRIC_PREFIX}model_active_version`;
export const MODEL_TRAINED_AT = `${METRIC_PREFIX}model_trained_timestamp_seconds`;
export const RETRAINS = `${METRIC_PREFIX}retrains_total`;
export const RETRAIN_DURATION = `${METRIC_PREFIX}retrain_duration_seconds`;

/** The active model per tenant, set by the model registry whenever it loads one. */
export const modelMetricProviders = [
  makeGaugeProvider({ name: MODEL_ACTIVE_VERSION, help: "Version of the tenant's active model (absent before the first model)", labelNames: ['tenant'] }),
  makeGaugeProvider({ name: MODEL_TRAINED_AT, help: "When the tenant's active model was trained, Unix seconds", labelNames: ['tenant'] }),
];

export const retrainMetricProviders = [
  makeZeroedCounterProvider({
    name: RETRAINS,
    help: 'Retrainings by trigger (interval, anomalies, drift, manual) and result (active, rejected, failed)',
    labelNames: ['tenant', 'reason', 'result'],
    known: labelCombinations({ reason: ['interval', 'anomalies', 'drift', 'manual'], result: ['active', 'rejected', 'failed'] }),
  }),
  makeHistogramProvider({
    name: RETRAIN_DURATION,
    help: 'Time to gather data, train and register a model, in seconds',
    labelNames: ['tenant'],
    buckets: [1, 2, 5, 10, 30, 60, 120, 300, 600],
  }),
];
