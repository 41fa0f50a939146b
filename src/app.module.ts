import { DynamicModule, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { ConfigModule } from './config/config.module';
import { APP_FILTER } from '@nestjs/core';
import { AppConfig } from './config/app-config';
import { BodyParserMiddleware } from './common/body-parser.middleware';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter';
import { ObservabilityModule } from './modules/observability/observability.module';
import { RequestContextMiddleware } from './modules/observability/request-context.middleware';
import { Database } from './modules/store/database/database';
import { StoreModule } from './modules/store/store.module';
import { TenancyModule } from './modules/tenancy/tenancy.module';
import { RetrainModule } from './modules/retrain/retrain.module';
import { DetectionModule } from './modules/detection/detection.module';
import { IngestionModule } from './modules/ingestion/ingestion.module';
import { RetrainJobsModule } from './modules/retrain/retrain-jobs.module';
import { ReplayModule } from './modules/detection/replay/replay.module';
import { AlertsModule } from './modules/alerts/alerts.module';
import { JobsModule } from './modules/jobs/jobs.module';

/** The modular monolith: built from a validated config and an opened database. */
@Module({})
export class AppModule implements NestModule {
  static register(config: AppConfig, database: Database): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), StoreModule.forRoot(database), ObservabilityModule.forRoot(), JobsModule, TenancyModule, RetrainModule, DetectionModule, IngestionModule, RetrainJobsModule, AlertsModule, ReplayModule],
      providers: [{ provide: APP_FILTER, useClass: AllExceptionsFilter }, BodyParserMiddleware],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestContextMiddleware, BodyParserMiddleware).forRoutes('*');
  }
}

/** The application without HTTP, for CLI commands (training, the scheduler). */
@Module({})
export class WorkerModule {
  static register(config: AppConfig, database: Database): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot(config),
        StoreModule.forRoot(database),
        ObservabilityModule.forRoot(),
        JobsModule,
        TenancyModule,
        RetrainModule,
        DetectionModule,
        IngestionModule,
        RetrainJobsModule,
      ],
    };
  }
}
