import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';

export const ALERTS_SENT = 'alerts_sent_total';
export const ALERTS_FAILED = 'alerts_failed_total';
export const ALERTS_SKIPPED = 'alerts_skipped_total';
export const ALERTS_RETRIED_AFTER_TIMEOUT = 'alerts_retried_after_timeout_total';
export const ALERT_DELIVERY_ATTEMPTS = 'alert_delivery_attempts_total';
export const ALERTS_BACKLOG = 'alerts_backlog';
export const ALERT_ANOMALIES = 'alert_anomalies_total';

export const alertMetricProviders = [
  makeCounterProvider({ name: ALERTS_SENT, help: 'Alert messages delivered to Slack', labelNames: ['tenant', 'kind'] }),
  makeCounterProvider({
    name: ALERTS_FAILED,
    help: 'Alert messages given up on (rejected by Slack, or out of attempts)',
    labelNames: ['tenant', 'kind'],
  }),
  makeCounterProvider({
    name: ALERTS_SKIPPED,
    help: 'Alert messages not sent on purpose (no webhook configured)',
    labelNames: ['tenant', 'reason'],
  }),
  makeCounterProvider({
    name: ALERTS_RETRIED_AFTER_TIMEOUT,
    help: 'Alert messages sent again after an attempt with no answer (timeout, dropped connection, sender gone): Slack may show them twice',
    labelNames: ['tenant'],
  }),
  makeCounterProvider({
    name: ALERT_DELIVERY_ATTEMPTS,
    help: 'Slack webhook calls, by outcome',
    labelNames: ['tenant', 'outcome'],
  }),
  makeGaugeProvider({
    name: ALERTS_BACKLOG,
    help: 'Alert messages waiting for delivery (pending or being sent)',
    labelNames: ['tenant'],
  }),
  makeCounterProvider({
    name: ALERT_ANOMALIES,
    help: 'Anomalies seen by the alert policy, by outcome (opened, grouped, renotified, below_severity, other_direction, silenced)',
    labelNames: ['tenant', 'outcome'],
  }),
];
