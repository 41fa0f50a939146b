import { Module } from '@nestjs/common';
import { RetrainModule } from '../retrain/retrain.module';
import { AnomalyBus } from './anomaly-bus';
import { DetectionService } from './detection.service';
import { detectionMetricProviders } from './detection.metrics';
import { DetectionsController } from './detections.controller';

/** Scoring (models and cold-start baselines), drift, the anomaly history and its read API. */
@Module({
  imports: [RetrainModule],
  controllers: [DetectionsController],
  providers: [DetectionService, AnomalyBus, ...detectionMetricProviders],
  exports: [DetectionService, AnomalyBus],
})
export class DetectionModule {}
