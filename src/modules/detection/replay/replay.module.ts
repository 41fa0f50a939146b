import { Module } from '@nestjs/common';
import { IngestionModule } from '../../ingestion/ingestion.module';
import { RetrainModule } from '../../retrain/retrain.module';
import { ReplayController } from './replay.controller';
import { ReplayService } from './replay.service';

/** Backtests (POST /replay): detection without live side effects. */
@Module({
  imports: [RetrainModule, IngestionModule],
  controllers: [ReplayController],
  providers: [ReplayService],
  exports: [ReplayService],
})
export class ReplayModule {}
