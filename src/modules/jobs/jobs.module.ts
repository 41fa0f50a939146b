import { Global, Module } from '@nestjs/common';
import { jobMetricProviders } from './jobs.metrics';
import { TenantJobRunner } from './tenant-job-runner';

/** The shared runner of per-tenant periodic jobs (once per interval across replicas). */
@Global()
@Module({
  providers: [TenantJobRunner, ...jobMetricProviders],
  exports: [TenantJobRunner],
})
export class JobsModule {}
