import { labelCombinations, makeZeroedCounterProvider, METRIC_PREFIX } from '../observability/metric-names';
import { makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';

export const INGEST_EVENTS = `${METRIC_PREFIX}ingest_events_total`;
export const ANOMALIES = `${METRIC_PREFIX}anomalies_total`;
export const ANOMALY_SCORE = `${METRIC_PREFIX}event_anomaly_score`;
export const DRIFT_PSI = `${METRIC_PREFIX}detection_drift_psi`;

export const detectionMetricProviders = [
  makeGaugeProvider({
    name: DRIFT_PSI,
    help: "PSI of each watched feature over this replica's latest 1,000 events against the active model's training reference",
    labelNames: ['tenant', 'feature'],
  }),
  makeZeroedCounterProvider({
    name: INGEST_EVENTS,
    help: 'Events received, by outcome (accepted/rejected) and, for rejections, the first failing field',
    labelNames: ['tenant', 'outcome', 'reason', 'source'],
    known: labelCombinations({ outcome: ['accepted'], reason: [''], source: ['api', 'loki-push', 'scheduler'] }),
  }),
  makeZeroedCounterProvider({
    name: ANOMALIES,
    help: 'Anomalies detected and stored',
    labelNames: ['tenant', 'kind', 'scorer'],
    known: [
      { kind: 'event', scorer: 'model' },
      { kind: 'event', scorer: 'baseline' },
      { kind: 'series', scorer: 'series' },
    ],
  }),
  makeHistogramProvider({
    name: ANOMALY_SCORE,
    // 1 − score, so that observations are never negative and _sum stays a counter.
    help: 'Anomaly score of accepted events: 1 minus the decision score (above 1 = anomalous, the decision boundary at 1)',
    labelNames: ['tenant', 'scorer'],
    buckets: [0.5, 0.7, 0.8, 0.9, 0.95, 1, 1.05, 1.1, 1.2, 1.3, 1.5, 2],
  }),
];
