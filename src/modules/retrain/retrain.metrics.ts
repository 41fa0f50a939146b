import { makeCounterProvider } from '@willsoto/nestjs-prometheus';

export const SCHEDULER_JOBS = 'scheduler_jobs_total';

export const retrainMetricProviders = [
  makeCounterProvider({ name: SCHEDULER_JOBS, help: 'Per-tenant scheduler jobs by outcome (ran, skipped: another replica had it, failed)', labelNames: ['tenant', 'outcome'] }),
];
