import type { NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { createServer, IncomingMessage, ServerResponse } from 'http';
import type { Socket } from 'net';

/**
 * Nest's Express adapter with one change: the HTTP server creates every request and response
 * object with Express's own prototypes (`app.request`, `app.response`) instead of Node's.
 *
 * Express's `app.handle` gives each request and response those prototypes with
 * `Object.setPrototypeOf`, which V8 pays for in garbage collection: measured with `--trace-gc-nvp`
 * on a bare Express 5 "hello" route at 200 requests/s, every scavenge promoted 1.3–6.9 MB and paused
 * 3–10 ms, against 0–11 kB and 0.2–0.4 ms for the same route with the prototypes already right (or
 * for the `router` package alone); in this service it was ≈ 10 kB promoted per request on any route,
 * scavenges of 3–6 ms every 0.7 s and, in turn, more frequent mark-compacts, in the tail of every
 * request's latency. Node's `http.createServer` takes the classes to construct
 * (`IncomingMessage`/`ServerResponse` options); when they already carry Express's prototypes,
 * Express's `Object.setPrototypeOf` finds nothing to change. Everything else is Nest's adapter as is.
 *
 * HTTPS, `forceCloseConnections` and `return503OnClosing` keep Nest's own server (none is used here).
 */
export class ExpressPrototypeAdapter extends ExpressAdapter {
  override initHttpServer(options: NestApplicationOptions): void {
    // Nest's own server where its options ask for more than a plain HTTP server (not used here).
    if (options?.httpsOptions || options?.forceCloseConnections || options?.return503OnClosing) return super.initHttpServer(options);
    const app = this.getInstance() as { request: object; response: object };
    // Constructors with Node's construction and Express's prototypes (themselves built on Node's).
    function ExpressRequest(this: IncomingMessage, socket: Socket): void {
      IncomingMessage.call(this, socket);
    }
    ExpressRequest.prototype = app.request;
    function ExpressResponse(this: ServerResponse, req: IncomingMessage, opts?: object): void {
      (ServerResponse as unknown as (this: ServerResponse, req: IncomingMessage, opts?: object) => void).call(this, req, opts);
    }
    ExpressResponse.prototype = app.response;
    this.setHttpServer(
      createServer(
        { IncomingMessage: ExpressRequest as unknown as typeof IncomingMessage, ServerResponse: ExpressResponse as unknown as typeof ServerResponse },
        this.getInstance(),
      ),
    );
  }
}
