import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { IS_PUBLIC } from './public.decorator';
import { AuthFailureLimiter } from './auth-failure-limiter.service';
import { RateLimiterService } from './rate-limiter.service';
import { TenancyException } from './tenancy.exception';
import { TenantContext, TenantRegistry } from './tenant-registry.service';

const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

function presentedKey(req: Request): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header.trim()) return header.trim();
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1].trim();
    // Log shippers (Promtail, Alloy) authenticate with basic auth: the key is the password.
    const b = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth.trim());
    if (b) {
      const decoded = Buffer.from(b[1], 'base64').toString('utf8');
      const password = decoded.slice(decoded.indexOf(':') + 1);
      if (decoded.includes(':') && password) return password;
    }
  }
  return undefined;
}

function requestedTenant(req: Request): string | undefined {
  const q = req.query?.tenant;
  if (q !== undefined && typeof q !== 'string') throw TenancyException.badTenantParameter('must be given once');
  const header = req.headers['x-tenant'];
  const chosen = q ?? (typeof header === 'string' ? header : undefined);
  if (chosen === undefined) return undefined;
  if (!TENANT_PATTERN.test(chosen)) throw TenancyException.badTenantParameter('must be 1-64 of [A-Za-z0-9_.-]');
  return chosen;
}

/**
 * The global guard of every controller: resolves the tenant from the API key and the requested
 * tenant, then applies the tenant's rate limit. 401 for a missing or unknown key; 403 when a valid
 * key asks for any other tenant, existing or not, so tenant names cannot be probed. Every 401/403
 * counts against the client address (AuthFailureLimiter): past the limit it gets 429.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly registry: TenantRegistry,
    private readonly rateLimiter: RateLimiterService,
    private readonly authFailures: AuthFailureLimiter,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [ctx.getHandler(), ctx.getClass()])) return true;
    const req = ctx.switchToHttp().getRequest<Request & { tenant?: TenantContext }>();
    const res = ctx.switchToHttp().getResponse<Response>();

    const address = req.ip ?? req.socket?.remoteAddress ?? 'unknown';
    const wait = this.authFailures.retryAfter(address);
    if (wait) throw TenancyException.rateLimited(wait, this.authFailures.limit, 'failed authentications from this address');
    let tenant: TenantContext;
    try {
      tenant = this.resolve(req);
    } catch (e) {
      if (e instanceof TenancyException && (e.getStatus() === 401 || e.getStatus() === 403)) this.authFailures.record(address);
      throw e;
    }
    const decision = await this.rateLimiter.consume(tenant.id);
    if (!decision.allowed) throw TenancyException.rateLimited(decision.retryAfterSeconds, decision.limit);
    res.setHeader('X-RateLimit-Remaining', String(decision.remaining));
    req.tenant = tenant;
    return true;
  }

  private resolve(req: Request): TenantContext {
    const key = presentedKey(req);
    const wanted = requestedTenant(req);
    if (key !== undefined) {
      const owner = this.registry.tenantForKey(key);
      if (!owner) throw TenancyException.invalidKey();
      if (wanted !== undefined && wanted !== owner) throw TenancyException.forbidden();
      return { id: owner, auth: 'api-key' };
    }
    const tenant = wanted ?? this.registry.defaultTenant;
    if (this.registry.isOpen(tenant)) return { id: tenant, auth: 'open' };
    throw TenancyException.missingKey();
  }
}
