import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './api-key.guard';
import { AuthFailureLimiter } from './auth-failure-limiter.service';
import { RateLimiterService } from './rate-limiter.service';
import { TenantRegistry } from './tenant-registry.service';
import { TenantController } from './tenant.controller';

/** Tenants, API keys and the global guard that puts every controller behind them. */
@Global()
@Module({
  controllers: [TenantController],
  providers: [TenantRegistry, RateLimiterService, AuthFailureLimiter, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [TenantRegistry],
})
export class TenancyModule {}
