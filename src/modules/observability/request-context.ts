import { AsyncLocalStorage } from 'async_hooks';

export interface RequestContext {
  requestId: string;
  tenant?: string;
}

/** Carries the request id (and tenant) to every log line written while serving a request. */
export const requestContext = new AsyncLocalStorage<RequestContext>();
