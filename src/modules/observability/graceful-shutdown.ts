import { Injectable, Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ErrorBody, ErrorCode } from '../../common/errors/error-code';
import type { AppConfig } from '../../config/app-config';

/** Kept after the longest background call for the loops' bookkeeping and the database close (ms). */
export const STOP_MARGIN_MS = 3000;

/**
 * How long the background loops may take to stop once asked (ms). They stop between batches, so
 * the longest wait is an outbound call started just before: when Slack is configured, a delivery
 * (a bot's history look-up then its post, 2 × SLACK_TIMEOUT_MS, or a webhook resend,
 * SLACK_RETRY_TIMEOUT_MS); when Loki is, a push or a pull (LOKI_TIMEOUT_MS); plus
 * {@link STOP_MARGIN_MS}. Draining on SIGTERM ends at the latest this long before
 * SHUTDOWN_GRACE_SECONDS runs out, so the stop that follows fits in the grace period.
 */
export function backgroundStopMs(
  c: Pick<
    AppConfig,
    | 'slackWebhookUrl'
    | 'tenantSlackWebhooks'
    | 'slackBotToken'
    | 'tenantSlackBots'
    | 'slackTimeoutMs'
    | 'slackRetryTimeoutMs'
    | 'lokiPushUrl'
    | 'lokiQueryUrl'
    | 'lokiTimeoutMs'
  >,
): number {
  const slack =
    Boolean(c.slackWebhookUrl || c.slackBotToken) ||
    Object.keys(c.tenantSlackWebhooks).length > 0 ||
    Object.keys(c.tenantSlackBots).length > 0;
  const loki = Boolean(c.lokiPushUrl || c.lokiQueryUrl);
  return (
    Math.max(
      slack ? Math.max(2 * c.slackTimeoutMs, c.slackRetryTimeoutMs) : 0,
      loki ? c.lokiTimeoutMs : 0,
    ) + STOP_MARGIN_MS
  );
}

/** Paths that keep answering while draining: liveness (the process is fine, do not restart it). */
const ALWAYS_SERVED = new Set(['/healthz']);

/**
 * Draining for a graceful stop, as Kubernetes expects it (SIGTERM, then SIGKILL after
 * terminationGracePeriodSeconds): once {@link begin} is called, `/readyz` answers 503 `NOT_READY`
 * and every new request 503 `SERVICE_UNAVAILABLE` with `Connection: close` (nothing of it is
 * read or stored, so the client can safely send it to another replica), while requests already in
 * progress finish, their responses also with `Connection: close` so keep-alive clients reconnect
 * elsewhere. {@link idle} resolves when none is left. `/healthz` keeps answering 200.
 *
 * Requests are counted from the moment their headers are parsed (an Express middleware placed
 * before every route and body parser), so a request whose body is still arriving is in progress.
 */
@Injectable()
export class GracefulShutdown {
  private readonly logger = new Logger(GracefulShutdown.name);
  private draining = false;
  private readonly inFlight = new Set<Response>();
  private waiters: (() => void)[] = [];
  /** When a request last arrived or ended (ms). */
  private lastRequestAt = 0;

  get isDraining(): boolean {
    return this.draining;
  }

  /** Requests in progress (headers read, response not finished). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Starts draining: readiness fails, new requests get 503 + `Connection: close`. Idempotent. */
  begin(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.logger.log(`draining: ${this.inFlight.size} request(s) in progress, new ones answered 503`);
    this.settle();
  }

  /** Resolves once draining has begun and no request is in progress (refused ones included). */
  idle(): Promise<void> {
    if (this.draining && this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Resolves once draining has begun, no request is in progress and none has arrived or ended for `ms`:
   * clients still sending (whose load balancer has not yet dropped this replica) get their 503
   * rather than a closed port. Clients that never stop would keep that from happening: from
   * `until` (epoch ms) on it resolves as soon as no request is in progress. Requests in progress
   * are always waited for.
   */
  async quiet(ms: number, until = Infinity): Promise<void> {
    for (;;) {
      await this.idle();
      const now = Date.now();
      if (now >= until) return;
      const wait = this.lastRequestAt + ms - now;
      if (wait <= 0 && this.inFlight.size === 0) return;
      await new Promise((r) => setTimeout(r, Math.max(10, Math.min(wait, until - now))));
    }
  }

  /** The Express middleware; install it before anything else (`app.use`). */
  middleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      this.lastRequestAt = Date.now();
      this.inFlight.add(res);
      const done = () => {
        this.lastRequestAt = Date.now();
        if (this.inFlight.delete(res)) this.settle();
      };
      res.once('finish', done);
      res.once('close', done);
      if (this.draining && !ALWAYS_SERVED.has(req.path)) {
        this.refuse(req, res);
        return;
      }
      if (this.draining) res.setHeader('Connection', 'close');
      next();
    };
  }

  private refuse(req: Request, res: Response): void {
    const ready = req.path === '/readyz';
    const body: ErrorBody = {
      statusCode: 503,
      code: ready ? ErrorCode.NOT_READY : ErrorCode.SERVICE_UNAVAILABLE,
      error: 'Service Unavailable',
      message: ready ? 'Not ready' : 'This replica is shutting down; send the request again (to another replica)',
      ...(ready ? { details: [{ field: 'shutdown', reason: 'shutting down' }] } : {}),
    };
    const answer = () => {
      if (res.headersSent) return;
      res.setHeader('Connection', 'close');
      res.status(503).json(body);
    };
    // Read the body to its end (and drop it) before answering: closing while the client is still
    // sending would reset the connection and lose the 503 along with it.
    if (req.readableEnded || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) {
      answer();
      return;
    }
    req.once('end', answer);
    req.once('error', () => res.destroy());
    req.resume();
  }

  private settle(): void {
    if (!this.draining || this.inFlight.size) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
