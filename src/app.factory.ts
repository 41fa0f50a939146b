import { INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { register } from 'prom-client';
import { AppConfig } from './config/app-config';
import { AppModule } from './app.module';
import { createValidationPipe } from './common/errors/validation.pipe';
import { finishOpenApiDocument } from './common/openapi';
import { rejectUndecodablePath } from './common/undecodable-path.middleware';
import { ExpressPrototypeAdapter } from './common/express-prototype-adapter';
import { GracefulShutdown } from './modules/observability/graceful-shutdown';
import { Database } from './modules/store/database/database';

/**
 * The OpenAPI 3 document at `/docs-json` (Swagger UI at `/docs`): both API-key forms as security
 * schemes (a plain key, so no `bearerFormat`), a relative server so Swagger UI and generated clients
 * call the origin the document came from, and the completions of {@link finishOpenApiDocument}.
 */
export function setupOpenApi(app: INestApplication): void {
  const doc = new DocumentBuilder()
    .setTitle('anomaly-detector')
    .setDescription(
      'Multi-tenant performance-anomaly detection for structured request logs. Authenticate with ' +
        '`X-API-Key: <key>` or `Authorization: Bearer <key>`; pick the tenant with `?tenant=` or `X-Tenant` ' +
        "(defaults to the key's own tenant). Errors share one shape with a stable `code`.",
    )
    .setVersion(process.env.npm_package_version ?? '0.1.0')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: "The tenant's API key" }, 'api-key')
    .addSecurity('bearer', { type: 'http', scheme: 'bearer', description: 'The same API key as a bearer token' })
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer('/', 'This server (relative to the document)')
    .build();
  const document = finishOpenApiDocument(SwaggerModule.createDocument(app, doc));
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', customSiteTitle: 'anomaly-detector API' });
}

/**
 * Builds the whole application on an opened database: used by main.ts and by the tests, so tests
 * exercise exactly what runs in production. Signals are main.ts's business (a graceful drain
 * before `app.close()`), not Nest's shutdown hooks.
 */
export async function createApp(config: AppConfig, database: Database, logger?: LoggerService): Promise<INestApplication> {
  // prom-client keeps metrics in a process-wide registry; a new application (tests build several)
  // starts from an empty one instead of failing on duplicate registration.
  register.clear();
  // Nest's Express adapter, with requests and responses built on Express's prototypes (GC: see the class).
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config, database), new ExpressPrototypeAdapter(), {
    bodyParser: false,
    logger: logger ?? false,
    abortOnError: false,
  });
  // First in the chain: a draining replica refuses new requests before anything reads them.
  app.use(app.get(GracefulShutdown).middleware());
  app.disable('x-powered-by');
  // No ETag: every API answer is computed per request, so a validator only costs a SHA-1 of each
  // body (a 1,000-event ingest answer is ~150 KB) and no client revalidates.
  app.set('etag', false);
  app.set('query parser', 'extended');
  app.use(rejectUndecodablePath);
  // Which X-Forwarded-For hops to believe for req.ip (the per-address limit of failed authentications).
  app.set('trust proxy', config.trustProxy);
  app.useGlobalPipes(createValidationPipe());
  setupOpenApi(app);
  await app.init();
  return app;
}
