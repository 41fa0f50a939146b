import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { ApiTenantScoped, CurrentTenant } from './current-tenant.decorator';
import { TenantContext } from './tenant-registry.service';

export class TenantInfoDto {
  @ApiProperty({ example: 'marketing' })
  tenant!: string;

  @ApiProperty({ enum: ['api-key', 'open'], description: 'open: a development tenant without keys' })
  auth!: 'api-key' | 'open';
}

@ApiTags('tenancy')
@ApiTenantScoped()
@Controller('tenant')
export class TenantController {
  @Get()
  @ApiOperation({ summary: 'The tenant this request acts on (check a key and tenant selection)' })
  @ApiOkResponse({ type: TenantInfoDto })
  whoami(@CurrentTenant() tenant: TenantContext): TenantInfoDto {
    return { tenant: tenant.id, auth: tenant.auth };
  }
}
