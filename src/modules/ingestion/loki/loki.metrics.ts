import { makeZeroedCounterProvider, METRIC_PREFIX } from '../../observability/metric-names';
import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';

export const LOKI_BACKLOG = `${METRIC_PREFIX}loki_outbox_backlog`;
export const LOKI_OLDEST_AGE = `${METRIC_PREFIX}loki_outbox_oldest_age_seconds`;
export const LOKI_SHIPPED = `${METRIC_PREFIX}loki_shipped_entries_total`;
export const LOKI_PUSH_FAILURES = `${METRIC_PREFIX}loki_push_failures_total`;
export const LOKI_INTAKE_LINES = `${METRIC_PREFIX}loki_intake_lines_total`;

export const lokiMetricProviders = [
  makeGaugeProvider({ name: LOKI_BACKLOG, help: 'Events and anomaly records waiting to be shipped to Loki', labelNames: ['tenant'] }),
  makeGaugeProvider({ name: LOKI_OLDEST_AGE, help: 'Age of the oldest unshipped entry, in seconds', labelNames: ['tenant'] }),
  makeZeroedCounterProvider({
    name: LOKI_SHIPPED,
    help: 'Entries delivered to Loki (or refused for good)',
    labelNames: ['tenant', 'outcome'],
    known: [{ outcome: 'shipped' }, { outcome: 'refused' }],
  }),
  makeCounterProvider({ name: LOKI_PUSH_FAILURES, help: 'Failed pushes to Loki that will be retried', labelNames: ['tenant', 'status'] }),
  makeZeroedCounterProvider({
    name: LOKI_INTAKE_LINES,
    help: 'Lines received on /loki/api/v1/push: accepted, rejected, and truncated (stored with text cut, also counted as accepted)',
    labelNames: ['tenant', 'outcome'],
    known: [{ outcome: 'accepted' }, { outcome: 'rejected' }, { outcome: 'truncated' }],
  }),
];
