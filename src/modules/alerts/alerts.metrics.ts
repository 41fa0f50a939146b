import { labelCombinations, makeZeroedCounterProvider, METRIC_PREFIX } from '../observability/metric-names';
import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';

export const ALERTS_SENT = `${METRIC_PREFIX}alerts_sent_total`;
export const ALERTS_FAILED = `${METRIC_PREFIX}alerts_failed_total`;
export const ALERTS_SKIPPED = `${METRIC_PREFIX}alerts_skipped_total`;
export const ALERTS_RETRIED_AFTER_TIMEOUT = `${METRIC_PREFIX}alerts_retried_after_timeout_total`;
export const ALERT_DELIVERY_ATTEMPTS = `${METRIC_PREFIX}alert_delivery_attempts_total`;
export const ALERTS_BACKLOG = `${METRIC_PREFIX}alerts_backlog`;
export const ALERT_ANOMALIES = `${METRIC_PREFIX}alert_anomalies_total`;

export const alertMetricProviders = [
  makeZeroedCounterProvider({
    name: ALERTS_SENT,
    help: 'Alert messages delivered to Slack',
    labelNames: ['tenant', 'kind'],
    known: labelCombinations({ kind: ['open', 'renotify', 'recovery'] }),
  }),
  makeZeroedCounterProvider({
    name: ALERTS_FAILED,
    help: 'Alert messages given up on (rejected by Slack, or out of attempts)',
    labelNames: ['tenant', 'kind'],
    known: labelCombinations({ kind: ['open', 'renotify', 'recovery'] }),
  }),
  makeCounterProvider({
    name: ALERTS_SKIPPED,
    help: 'Alert messages not sent on purpose (no webhook configured)',
    labelNames: ['tenant', 'reason'],
  }),
  makeZeroedCounterProvider({
    known: [{}],
    name: ALERTS_RETRIED_AFTER_TIMEOUT,
    help: 'Alert messages sent again after an attempt with no answer (timeout, dropped connection, sender gone): Slack may show them twice',
    labelNames: ['tenant'],
  }),
  makeZeroedCounterProvider({
    name: ALERT_DELIVERY_ATTEMPTS,
    help: 'Slack webhook calls, by outcome',
    labelNames: ['tenant', 'outcome'],
    known: labelCombinations({ outcome: ['ok', 'rate_limited', 'rejected', 'server_error', 'timeout', 'network'] }),
  }),
  makeGaugeProvider({
    name: ALERTS_BACKLOG,
    help: 'Alert messages waiting for delivery (pending or being sent)',
    labelNames: ['tenant'],
  }),
  makeCounterProvider({
    name: ALERT_ANOMALIES,
    help: 'Anomalies seen by the incident policy, by outcome (opened, escalated, renotified, joined, evidence, event_in_incident, event_alone)',
    labelNames: ['tenant', 'outcome'],
  }),
];
