import { labelCombinations, makeZeroedCounterProvider, METRIC_PREFIX } from '../observability/metric-names';

export const SCHEDULER_JOBS = `${METRIC_PREFIX}scheduler_jobs_total`;

/** The per-tenant periodic jobs run through the shared runner (the `job` label). */
export const TENANT_JOBS = ['scheduler', 'series-close', 'alerts', 'retention'] as const;

export const jobMetricProviders = [
  makeZeroedCounterProvider({
    name: SCHEDULER_JOBS,
    help: 'Per-tenant periodic jobs by outcome (ran; skipped: another replica holds it or already ran it this interval; failed)',
    labelNames: ['tenant', 'outcome', 'job'],
    known: labelCombinations({ outcome: ['ran', 'skipped', 'failed'], job: TENANT_JOBS }),
  }),
];
