import { HttpStatus } from '@nestjs/common';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';

/** Authentication, tenant-access and rate-limit failures. */
export class TenancyException extends AppException {
  static missingKey(): TenancyException {
    return new TenancyException(
      HttpStatus.UNAUTHORIZED,
      ErrorCode.MISSING_API_KEY,
      'An API key is required (X-API-Key header or Authorization: Bearer)',
      undefined,
      { 'WWW-Authenticate': 'Bearer' },
    );
  }

  static invalidKey(): TenancyException {
    return new TenancyException(HttpStatus.UNAUTHORIZED, ErrorCode.INVALID_API_KEY, 'The API key is not valid', undefined, {
      'WWW-Authenticate': 'Bearer error="invalid_token"',
    });
  }

  static forbidden(): TenancyException {
    return new TenancyException(HttpStatus.FORBIDDEN, ErrorCode.TENANT_FORBIDDEN, 'This API key cannot access the requested tenant');
  }

  static rateLimited(retryAfterSeconds: number, limit: number, what = 'requests'): TenancyException {
    return new TenancyException(
      HttpStatus.TOO_MANY_REQUESTS,
      ErrorCode.RATE_LIMITED,
      `Rate limit of ${limit} ${what} per minute exceeded; retry in ${retryAfterSeconds} s`,
      undefined,
      { 'Retry-After': String(retryAfterSeconds) },
    );
  }

  static badTenantParameter(reason: string): TenancyException {
    return new TenancyException(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, 'Invalid tenant', [
      { field: 'tenant', reason },
    ]);
  }
}
