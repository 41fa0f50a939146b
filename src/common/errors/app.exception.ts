import { HttpException, HttpStatus } from '@nestjs/common';
import { ErrorCode, ErrorDetail } from './error-code';

/**
 * Base of every exception a module throws on purpose: carries the HTTP status, a stable
 * {@link ErrorCode} and optional field details. Modules subclass it (e.g. TenancyException) so the
 * origin is visible in logs while the HTTP mapping stays in one filter.
 */
export class AppException extends HttpException {
  constructor(
    status: HttpStatus,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message, status);
  }

  static validation(details: ErrorDetail[], message = 'Request validation failed'): AppException {
    return new AppException(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, message, details);
  }

  static notFound(what: string): AppException {
    return new AppException(HttpStatus.NOT_FOUND, ErrorCode.NOT_FOUND, `${what} not found`);
  }
}
