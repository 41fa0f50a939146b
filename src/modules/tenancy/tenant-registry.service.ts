import { Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'crypto';
import { AppConfig } from '../../config/app-config';

export interface TenantContext {
  /** The tenant the request acts on. */
  id: string;
  /** How the caller was admitted: with the tenant's key, or open (development, tenant without keys). */
  auth: 'api-key' | 'open';
}

const hash = (key: string) => createHash('sha256').update(key, 'utf8').digest();

/**
 * The enabled tenants and their API keys. Keys are kept only as SHA-256 digests and compared in
 * constant time against every stored digest, so neither the key nor which tenant it belongs to
 * leaks through timing.
 */
@Injectable()
export class TenantRegistry {
  private readonly tenants: ReadonlySet<string>;
  private readonly keyDigests: { digest: Buffer; tenant: string }[];

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    this.tenants = new Set(config.tenants);
    this.keyDigests = Object.entries(config.tenantApiKeys).flatMap(([tenant, keys]) =>
      keys.map((k) => ({ digest: hash(k), tenant })),
    );
  }

  get defaultTenant(): string {
    return this.config.defaultTenant;
  }

  list(): string[] {
    return [...this.tenants];
  }

  isEnabled(tenant: string): boolean {
    return this.tenants.has(tenant);
  }

  /** A tenant with no key is open to unauthenticated callers in development only (see AppConfig.allowsOpenTenants). */
  isOpen(tenant: string): boolean {
    return this.tenants.has(tenant) && this.config.allowsOpenTenants && !this.config.tenantApiKeys[tenant]?.length;
  }

  /** The tenant owning `key`, or undefined. Visits every digest whatever matches. */
  tenantForKey(key: string): string | undefined {
    const candidate = hash(key);
    let found: string | undefined;
    for (const { digest, tenant } of this.keyDigests) {
      if (timingSafeEqual(candidate, digest) && found === undefined) found = tenant;
    }
    return found;
  }
}
