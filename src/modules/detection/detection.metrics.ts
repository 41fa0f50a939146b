import { makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';

export const INGEST_EVENTS = 'ingest_events_total';
export const ANOMALIES = 'anomalies_total';
export const ANOMALY_SCORE = 'anomaly_score';
export const DRIFT_PSI = 'detection_drift_psi';

export const detectionMetricProviders = [
  makeGaugeProvider({
    name: DRIFT_PSI,
    help: "PSI of each watched feature over this replica's latest 1,000 events against the active model's training reference",
    labelNames: ['tenant', 'feature'],
  }),
  makeCounterProvider({
    name: INGEST_EVENTS,
    help: 'Events received, by outcome (accepted/rejected) and, for rejections, the first failing field',
    labelNames: ['tenant', 'outcome', 'reason', 'source'],
  }),
  makeCounterProvider({ name: ANOMALIES, help: 'Anomalies detected and stored', labelNames: ['tenant', 'kind', 'scorer'] }),
  makeHistogramProvider({
    name: ANOMALY_SCORE,
    help: 'Scores of accepted events (decision_function convention: negative = anomalous)',
    labelNames: ['tenant', 'scorer'],
    buckets: [-0.5, -0.3, -0.2, -0.1, -0.05, 0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5],
  }),
];
