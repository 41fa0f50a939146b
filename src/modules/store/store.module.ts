import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AlertRepository } from './alert.repository';
import { Database } from './database/database';
import { DetectionRepository } from './detection.repository';
import { IncidentRepository } from './incident.repository';
import { EventRepository, OutboxRepository } from './event.repository';
import { ModelRepository } from './model.repository';
import { PartitionRepository } from './partition.repository';
import { RateLimitRepository } from './rate-limit.repository';
import { RetrainStateRepository } from './retrain-state.repository';
import { SeriesRepository } from './series.repository';
import { ReplayJobRepository } from './replay-job.repository';
import { SilenceRepository } from './silence.repository';
import { JobTickRepository } from './job-tick.repository';

const REPOSITORIES = [RateLimitRepository, ModelRepository, EventRepository, DetectionRepository, OutboxRepository, RetrainStateRepository, SeriesRepository, ReplayJobRepository, AlertRepository, IncidentRepository, SilenceRepository, PartitionRepository, JobTickRepository];

/**
 * The data layer: the opened {@link Database} and the repositories, the only classes that touch it.
 * The database is opened before Nest starts (so migrations run before any request) and closed on
 * application shutdown, after HTTP has stopped.
 */
@Global()
@Module({})
export class StoreModule implements OnApplicationShutdown {
  constructor(@Inject(Database) private readonly database: Database) {}

  static forRoot(database: Database): DynamicModule {
    return {
      module: StoreModule,
      providers: [
        { provide: Database, useValue: database },
        { provide: DataSource, useValue: database.dataSource },
        ...REPOSITORIES,
      ],
      exports: [Database, ...REPOSITORIES],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.database.close();
  }
}
