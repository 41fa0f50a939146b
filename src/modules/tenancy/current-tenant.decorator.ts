import { applyDecorators, createParamDecorator, ExecutionContext } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiQuery, ApiResponse, ApiSecurity } from '@nestjs/swagger';
import { TenantContext } from './tenant-registry.service';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';

export type TenantRequest = { tenant?: TenantContext };

/** The tenant resolved by the API-key guard for this request. */
export const CurrentTenant = createParamDecorator((_data: unknown, ctx: ExecutionContext): TenantContext => {
  const req = ctx.switchToHttp().getRequest<TenantRequest>();
  if (!req.tenant) throw new Error('CurrentTenant used on a route the tenancy guard did not run on');
  return req.tenant;
});

/**
 * Documents a tenant-scoped controller: the API-key schemes, the tenant selector and the auth,
 * tenant and rate-limit errors every such route can answer.
 */
export const ApiTenantScoped = () =>
  applyDecorators(
    ApiSecurity('api-key'),
    ApiBearerAuth('bearer'),
    ApiQuery({ name: 'tenant', required: false, description: "Tenant to act on; defaults to the key's own tenant" }),
    ApiHeader({ name: 'X-Tenant', required: false, description: 'Alternative to the tenant query parameter' }),
    ApiResponse({ status: 400, description: 'VALIDATION_FAILED: an invalid parameter (e.g. tenant) or body', type: ErrorResponseDto }),
    ApiResponse({ status: 401, description: 'Missing or unknown API key', type: ErrorResponseDto }),
    ApiResponse({ status: 403, description: 'The key cannot access the requested tenant', type: ErrorResponseDto }),
    ApiResponse({ status: 429, description: 'Tenant rate limit exceeded (see Retry-After)', type: ErrorResponseDto }),
  );
