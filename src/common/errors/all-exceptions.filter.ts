import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'http';
import type { Request, Response } from 'express';
import { AppException } from './app.exception';
import { ErrorBody, ErrorCode } from './error-code';

const DEFAULT_CODES: Partial<Record<number, ErrorCode>> = {
  400: ErrorCode.VALIDATION_FAILED,
  401: ErrorCode.MISSING_API_KEY,
  403: ErrorCode.TENANT_FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.METHOD_NOT_ALLOWED,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.SERVICE_UNAVAILABLE,
};

/** Connection-level failures of the database: the request could not be served, try again. */
function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; name?: string };
  if (!e || typeof e !== 'object') return false;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001', '53300'].includes(e.code ?? '')) {
    return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}

/**
 * A statement the server cancelled (statement_timeout, lock_timeout), a transaction it aborted to
 * resolve a conflict (serialization failure, deadlock), or one the client stopped waiting for: in
 * each case nothing was committed and the same request may simply be sent again.
 */
function isDatabaseTimeout(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e || typeof e !== 'object') return false;
  if (['57014', '55P03', '40001', '40P01'].includes(e.code ?? '')) return true;
  return /Query read timeout/i.test(e.message ?? '');
}

/** Seconds a client should wait before retrying after a database 503. */
const DATABASE_RETRY_AFTER_SECONDS = '5';

/**
 * Maps every error, thrown anywhere in the request pipeline, to the one error shape of SPEC §4.
 * Unexpected errors are logged with their stack and answered without internals.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request & { id?: string }>();
    const body = this.toBody(exception, req);
    if (exception instanceof AppException && exception.headers) {
      for (const [k, v] of Object.entries(exception.headers)) res.setHeader(k, v);
    }
    if (body.code === ErrorCode.DATABASE_UNAVAILABLE || body.code === ErrorCode.DATABASE_TIMEOUT) {
      if (!res.headersSent) res.setHeader('Retry-After', DATABASE_RETRY_AFTER_SECONDS);
    }
    if (body.statusCode >= 500) {
      const err = exception as Error;
      this.logger.error(`${req.method} ${req.originalUrl} failed: ${err?.message}`, err?.stack);
    }
    if (res.headersSent) return;
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown, req: Request & { id?: string }): ErrorBody {
    const requestId = req.id;
    if (exception instanceof AppException) {
      const status = exception.getStatus();
      return {
        statusCode: status,
        code: exception.code,
        error: STATUS_CODES[status] ?? 'Error',
        message: exception.message,
        ...(exception.details
          ? { details: exception.details }
          : exception.code === ErrorCode.INVALID_BODY
            ? { details: [{ field: 'body', reason: exception.message }] }
            : {}),
        requestId,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : Array.isArray((response as { message?: unknown }).message)
            ? ((response as { message: string[] }).message).join('; ')
            : String((response as { message?: unknown }).message ?? exception.message);
      const unmatchedRoute = status === 404 && /^Cannot [A-Z]+ /.test(message);
      return {
        statusCode: status,
        code: unmatchedRoute ? ErrorCode.ROUTE_NOT_FOUND : (DEFAULT_CODES[status] ?? ErrorCode.INTERNAL_ERROR),
        error: STATUS_CODES[status] ?? 'Error',
        message: unmatchedRoute ? `No route for ${req.method} ${req.path}` : message,
        requestId,
      };
    }
    if (isDatabaseTimeout(exception)) {
      return {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        code: ErrorCode.DATABASE_TIMEOUT,
        error: STATUS_CODES[503]!,
        message: 'The database did not answer in time and the statement was rolled back; retry later',
        requestId,
      };
    }
    if (isDatabaseUnavailable(exception)) {
      return {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        code: ErrorCode.DATABASE_UNAVAILABLE,
        error: STATUS_CODES[503]!,
        message: 'The database is unavailable; retry later',
        requestId,
      };
    }
    return {
      statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
      code: ErrorCode.INTERNAL_ERROR,
      error: STATUS_CODES[500]!,
      message: 'Internal server error',
      requestId,
    };
  }
}
