import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { GracefulShutdown } from './graceful-shutdown';
import { HealthController } from './health.controller';
import { httpMetricProviders } from './http-metrics';
import { PromController } from './prom.controller';
import { RequestContextMiddleware } from './request-context.middleware';
import { serviceMetricProviders, ServiceMetrics } from './service-metrics';

/** Health probes, Prometheus exposition and per-request logging/metrics. */
@Module({})
export class ObservabilityModule {
  /** Dynamic so default metrics register on the registry of this application, when it is built. */
  static forRoot(): DynamicModule {
    return {
      module: ObservabilityModule,
      global: true,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        PrometheusModule.register({ path: '/prom', controller: PromController, defaultMetrics: { enabled: true } }),
      ],
      controllers: [HealthController],
      providers: [...httpMetricProviders, ...serviceMetricProviders, ServiceMetrics, RequestContextMiddleware, GracefulShutdown],
      exports: [PrometheusModule, ...httpMetricProviders, RequestContextMiddleware, GracefulShutdown],
    };
  }
}
