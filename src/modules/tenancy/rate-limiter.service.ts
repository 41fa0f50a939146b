import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { RateLimitRepository } from '../store/rate-limit.repository';

const WINDOW_MS = 60_000;

export type RateDecision =
  | { allowed: true; remaining: number }
  | { allowed: false; retryAfterSeconds: number; limit: number };

/**
 * Per-tenant request limit (`RATE_LIMIT_PER_MINUTE`) in fixed one-minute windows counted in
 * PostgreSQL, so the limit holds across replicas. When the database cannot be reached the limiter
 * lets requests through: the requests then fail or succeed on their own, and a database outage
 * does not turn into a wall of 429s.
 */
@Injectable()
export class RateLimiterService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RateLimiterService.name);
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

  async consume(tenantId: string, now = Date.now()): Promise<RateDecision> {
    const windowStart = now - (now % WINDOW_MS);
    let hits: number;
    try {
      hits = await this.repository.hit(tenantId, new Date(windowStart));
    } catch (e) {
      this.logger.warn(`rate limiter unavailable, allowing request: ${(e as Error).message}`);
      return { allowed: true, remaining: this.config.rateLimitPerMinute };
    }
    const limit = this.config.rateLimitPerMinute;
    if (hits > limit) {
      const retryAfterSeconds = Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000));
      return { allowed: false, retryAfterSeconds, limit };
    }
    return { allowed: true, remaining: limit - hits };
  }

  async prune(now = Date.now()): Promise<void> {
    try {
      await this.repository.pruneAllTenantsBefore(new Date(now - 5 * WINDOW_MS));
    } catch (e) {
      this.logger.warn(`rate-limit prune failed: ${(e as Error).message}`);
    }
  }
}
