import { Module } from '@nestjs/common';
import { RetrainModule } from '../retrain/retrain.module';
import { AnomalyBus } from './anomaly-bus';
import { DetectionService } from './detection.service';
import { detectionMetricProviders } from './detection.metrics';
import { DetectionsController } from './detections.controller';
import { SeriesService } from './series.service';

/** Scoring (models and cold-start baselines), drift, the anomaly history and its read API. */
@Module({
  imports: [RetrainModule],
  controllers: [DetectionsController],
  providers: [DetectionService, AnomalyBus, SeriesService, ...detectionMetricProviders],
  exports: [DetectionService, AnomalyBus, SeriesService],
})
export class DetectionModule {}
