import { METRIC_PREFIX } from './metric-names';
import { makeCounterProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';

export const HTTP_REQUESTS = `${METRIC_PREFIX}http_requests_total`;
export const HTTP_DURATION = `${METRIC_PREFIX}http_request_duration_seconds`;

const labelNames = ['route', 'method', 'status', 'tenant'];

export const httpMetricProviders = [
  makeCounterProvider({ name: HTTP_REQUESTS, help: 'HTTP requests served', labelNames }),
  makeHistogramProvider({
    name: HTTP_DURATION,
    help: 'HTTP request latency in seconds',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
];
