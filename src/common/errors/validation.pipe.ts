import { ValidationError, ValidationPipe } from '@nestjs/common';
import { AppException } from './app.exception';
import { ErrorDetail } from './error-code';

function flatten(errors: ValidationError[], prefix = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    for (const reason of Object.values(e.constraints ?? {})) out.push({ field, reason });
    if (e.children?.length) out.push(...flatten(e.children, field));
  }
  return out;
}

/** The global DTO validation: unknown fields rejected, every failure reported as a field + reason. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    exceptionFactory: (errors) => AppException.validation(flatten(errors)),
  });
}
