import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { HealthController } from './health.controller';
import { httpMetricProviders } from './http-metrics';
import { PromController } from './prom.controller';
import { RequestContextMiddleware } from './request-context.middleware';

/** Health probes, Prometheus exposition and per-request logging/metrics. */
@Module({
  imports: [
    TerminusModule.forRoot({ logger: false, errorLogStyle: 'json' }),
    PrometheusModule.register({ path: '/prom', controller: PromController, defaultMetrics: { enabled: true } }),
  ],
  controllers: [HealthController],
  providers: [...httpMetricProviders, RequestContextMiddleware],
  exports: [PrometheusModule, ...httpMetricProviders, RequestContextMiddleware],
})
export class ObservabilityModule {}
