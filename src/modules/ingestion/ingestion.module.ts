import { Module } from '@nestjs/common';
import { DetectionModule } from '../detection/detection.module';
import { IngestionController } from './ingestion.controller';
import { IngestionService } from './ingestion.service';
import { LokiIntakeController } from './loki/loki-intake.controller';
import { LokiIntakeService } from './loki/loki-intake.service';
import { LokiShipperService } from './loki/loki-shipper.service';
import { LokiClient } from './loki/loki.client';
import { lokiMetricProviders } from './loki/loki.metrics';

/** POST /ingest and event validation; Loki shipping (outbox), queries and the Loki-compatible intake. */
@Module({
  imports: [DetectionModule],
  controllers: [IngestionController, LokiIntakeController],
  providers: [IngestionService, LokiClient, LokiShipperService, LokiIntakeService, ...lokiMetricProviders],
  exports: [IngestionService, LokiClient, LokiShipperService],
})
export class IngestionModule {}
