import { Module } from '@nestjs/common';
import { ModelRegistryService } from './model-registry.service';
import { modelMetricProviders } from './retrain.metrics';
import { TrainingService } from './training.service';

/** Model registry and training (scheduled retraining arrives with the scheduler). */
@Module({
  providers: [ModelRegistryService, TrainingService, ...modelMetricProviders],
  exports: [ModelRegistryService, TrainingService],
})
export class RetrainModule {}
