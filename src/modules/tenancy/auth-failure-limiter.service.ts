import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';

const WINDOW_MS = 60_000;
/** Addresses remembered at most; beyond it the oldest windows are dropped first. */
const MAX_ADDRESSES = 100_000;

/**
 * Throttles key guessing: counts 401 and 403 answers per client address in fixed one-minute windows
 * (`AUTH_FAILURE_LIMIT_PER_MINUTE`); an address at the limit gets 429 for every keyed request until
 * its window ends, valid key or not (else a guess that hits would still tell). The client address is
 * Express's `req.ip`, so behind a proxy set `TRUST_PROXY` or every client shares the proxy's budget.
 * Counted in memory per replica: with R replicas an address gets at most R × the limit per minute.
 */
@Injectable()
export class AuthFailureLimiter implements OnModuleInit, OnModuleDestroy {
  private readonly windows = new Map<string, { start: number; failures: number }>();
  private pruneTimer?: NodeJS.Timeout;

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  onModuleInit(): void {
    this.pruneTimer = setInterval(() => this.prune(), WINDOW_MS);
    this.pruneTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.pruneTimer);
  }

  /** Seconds until `address` may try again, or 0 when it is under the limit. */
  retryAfter(address: string, now = Date.now()): number {
    const w = this.windows.get(address);
    if (!w || now - w.start >= WINDOW_MS || w.failures < this.config.authFailureLimitPerMinute) return 0;
    return Math.max(1, Math.ceil((w.start + WINDOW_MS - now) / 1000));
  }

  /** Counts one 401/403 answer to `address`. */
  record(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (!w || now - w.start >= WINDOW_MS) {
      this.windows.delete(address);
      this.windows.set(address, { start: now - (now % WINDOW_MS), failures: 1 });
      if (this.windows.size > MAX_ADDRESSES) this.windows.delete(this.windows.keys().next().value!);
    } else {
      w.failures++;
    }
  }

  get limit(): number {
    return this.config.authFailureLimitPerMinute;
  }

  private prune(now = Date.now()): void {
    for (const [address, w] of this.windows) if (now - w.start >= WINDOW_MS) this.windows.delete(address);
  }
}
