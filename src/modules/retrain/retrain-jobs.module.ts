import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { DetectionModule } from '../detection/detection.module';
import { IngestionModule } from '../ingestion/ingestion.module';
import { ModelsController } from './models.controller';
import { SchedulerService } from './retrain.jobs';
import { retrainMetricProviders } from './retrain.metrics';
import { RetrainModule } from './retrain.module';
import { RetrainService } from './retrain.service';

/**
 * Retraining policy, the per-tenant scheduler and the model API. Separate from RetrainModule (the
 * registry), which detection needs, so that the jobs can use detection and ingestion without a cycle.
 */
@Module({
  imports: [ScheduleModule.forRoot(), RetrainModule, DetectionModule, IngestionModule],
  controllers: [ModelsController],
  providers: [RetrainService, SchedulerService, ...retrainMetricProviders],
  exports: [RetrainService, SchedulerService],
})
export class RetrainJobsModule {}
