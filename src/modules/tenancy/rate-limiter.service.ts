import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { RateLimitRepository } from '../store/rate-limit.repository';

const WINDOW_MS = 60_000;

export type RateDecision =
  | { allowed: true; remaining: number }
  | { allowed: false; retryAfterSeconds: number; limit: number };

interface Lease {
  windowStart: number;
  tokens: number;
  pending?: Promise<number>;
}

/**
 * Per-tenant request limit (`RATE_LIMIT_PER_MINUTE`) in fixed one-minute windows counted in
 * PostgreSQL, so the limit holds across replicas. A replica does not ask the database for every
 * request: it leases tokens in chunks of 1/50 of the limit (at most 100; 1 for small limits, so
 * those stay exact), counted in the shared window when leased, and leases the next chunk in the
 * background while a quarter of the current one is left, so requests do not wait for it. With R
 * replicas the window can therefore end with up to 1.25 R chunks leased but unused, never with more
 * requests than the limit.
 * When the database cannot be reached the limiter lets requests through: the requests then fail
 * or succeed on their own, and a database outage does not turn into a wall of 429s.
 */
@Injectable()
export class RateLimiterService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RateLimiterService.name);
  private readonly leases = new Map<string, Lease>();
  private pruneTimer?: NodeJS.Timeout;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly repository: RateLimitRepository,
  ) {}

  onModuleInit(): void {
    this.pruneTimer = setInterval(() => void this.prune(), WINDOW_MS);
    this.pruneTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.pruneTimer);
  }

  private get chunk(): number {
    return Math.max(1, Math.min(100, Math.floor(this.config.rateLimitPerMinute / 50)));
  }

  async consume(tenantId: string, now = Date.now()): Promise<RateDecision> {
    const limit = this.config.rateLimitPerMinute;
    const windowStart = now - (now % WINDOW_MS);
    let lease = this.leases.get(tenantId);
    if (!lease || lease.windowStart !== windowStart) {
      lease = { windowStart, tokens: 0 };
      this.leases.set(tenantId, lease);
    }
    while (lease.tokens <= 0) {
      if (!lease.pending) lease.pending = this.lease(tenantId, lease, limit).finally(() => (lease!.pending = undefined));
      let granted: number;
      try {
        granted = await lease.pending;
      } catch (e) {
        this.logger.warn(`rate limiter unavailable, allowing request: ${(e as Error).message}`);
        return { allowed: true, remaining: limit };
      }
      if (granted <= 0 && lease.tokens <= 0) {
        const retryAfterSeconds = Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000));
        return { allowed: false, retryAfterSeconds, limit };
      }
    }
    lease.tokens--;
    // Lease the next chunk while a quarter of this one is left, so that no request waits for the
    // database round trip: it used to fall on every 100th request (at 200 requests/s, 1% of them,
    // the p99 itself). Not for limits counted one token at a time (those stay exact).
    const chunk = this.chunk;
    if (chunk > 1 && !lease.pending && lease.tokens <= chunk / 4) {
      const current = lease;
      const ahead = this.lease(tenantId, current, limit).finally(() => (current.pending = undefined));
      // A request that ends up waiting for it sees the failure itself (and is let through, as above).
      ahead.catch((e) => this.logger.warn(`rate limiter unavailable, leasing ahead failed: ${(e as Error).message}`));
      current.pending = ahead;
    }
    return { allowed: true, remaining: lease.tokens };
  }

  /** Takes a chunk of the window's budget; returns how many tokens it got (0: the budget is spent). */
  private async lease(tenantId: string, lease: Lease, limit: number): Promise<number> {
    const n = this.chunk;
    const total = await this.repository.hit(tenantId, new Date(lease.windowStart), n);
    const granted = Math.max(0, Math.min(n, limit - (total - n)));
    lease.tokens += granted;
    return granted;
  }

  async prune(now = Date.now()): Promise<void> {
    try {
      await this.repository.pruneAllTenantsBefore(new Date(now - 5 * WINDOW_MS));
    } catch (e) {
      this.logger.warn(`rate-limit prune failed: ${(e as Error).message}`);
    }
  }
}
