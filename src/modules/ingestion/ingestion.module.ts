import { Module } from '@nestjs/common';
import { DetectionModule } from '../detection/detection.module';
import { IngestionController } from './ingestion.controller';
import { IngestionService } from './ingestion.service';

/** POST /ingest and event validation. */
@Module({
  imports: [DetectionModule],
  controllers: [IngestionController],
  providers: [IngestionService],
  exports: [IngestionService],
})
export class IngestionModule {}
