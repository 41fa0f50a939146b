import { Injectable, Logger, NestMiddleware } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { randomUUID } from 'crypto';
import type { NextFunction, Request, Response } from 'express';
import { Counter, Histogram } from 'prom-client';
import { HTTP_DURATION, HTTP_REQUESTS } from './http-metrics';
import { requestContext } from './request-context';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Liveness, readiness and the Prometheus scrape. */
const ROUTINE_PATHS = new Set(['/healthz', '/readyz', '/prom']);

/**
 * Per request: a request id (the caller's X-Request-Id when well formed, else a new one) echoed in
 * the response and attached to every log line; on completion an access-log line and the HTTP
 * counter and latency histogram by route, method, status and tenant.
 */
@Injectable()
export class RequestContextMiddleware implements NestMiddleware {
  private readonly logger = new Logger('HTTP');

  constructor(
    @InjectMetric(HTTP_REQUESTS) private readonly requests: Counter<string>,
    @InjectMetric(HTTP_DURATION) private readonly duration: Histogram<string>,
  ) {}

  use(req: Request & { id?: string; tenant?: { id: string } }, res: Response, next: NextFunction): void {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    req.id = id;
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();
    const store = { requestId: id } as { requestId: string; tenant?: string };
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The route template, not the raw path, keeps label cardinality bounded.
      const route = req.route?.path ? String(req.baseUrl ?? '') + String(req.route.path) : 'unmatched';
      const labels = { route, method: req.method, status: String(res.statusCode), tenant: req.tenant?.id ?? 'none' };
      this.requests.inc(labels);
      this.duration.observe(labels, seconds);
      store.tenant = req.tenant?.id;
      const line = { msg: 'request', method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10 };
      // Probes and scrapes arrive every few seconds and would drown the access log: debug, unless they fail.
      const routine = ROUTINE_PATHS.has(req.path) && res.statusCode < 400;
      requestContext.run(store, () => (routine ? this.logger.debug(line) : this.logger.log(line)));
    });
    requestContext.run(store, () => next());
  }
}
