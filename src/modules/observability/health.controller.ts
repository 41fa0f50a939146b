import { Controller, Get, HttpStatus, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';
import { Database } from '../store/database/database';
import { Public } from '../tenancy/public.decorator';

/** Liveness (the process answers) and readiness (database reachable, schema up to date). */
@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(Database) private readonly database: Database,
  ) {}

  @Public()
  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process is up' })
  liveness(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Public()
  @Get('readyz')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: database reachable and migrations applied (503 otherwise)' })
  async readiness(): Promise<HealthCheckResult> {
    try {
      return await this.check();
    } catch (e) {
      if (!(e instanceof ServiceUnavailableException)) throw e;
      // Answer in the one error shape, one detail per failing check.
      const result = e.getResponse() as HealthCheckResult;
      const details = Object.entries(result.details ?? {})
        .filter(([, v]) => v.status !== 'up')
        .map(([field, v]) => ({ field, reason: String((v as { message?: string }).message ?? v.status) }));
      throw new AppException(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.NOT_READY, 'Not ready', details);
    }
  }

  private check(): Promise<HealthCheckResult> {
    return this.health.check([
      async () => {
        const check = this.indicators.check('database');
        return (await this.database.ping()) ? check.up() : check.down({ message: 'database unreachable' });
      },
      async () => {
        const check = this.indicators.check('migrations');
        try {
          return (await this.database.hasPendingMigrations())
            ? check.down({ message: 'pending migrations' })
            : check.up();
        } catch {
          return check.down({ message: 'cannot read migration state' });
        }
      },
    ]);
  }
}
