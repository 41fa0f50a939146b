import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
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
  readiness() {
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
