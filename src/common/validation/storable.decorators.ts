import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { ValidateBy, ValidationArguments } from 'class-validator';
import { parseStorableDate, unstorableDateReason, unstorableStringReason } from './storable';

/**
 * A DTO field holding an ISO 8601 date-time that PostgreSQL can hold (years 0001-9999): transformed
 * into a `Date`; anything else fails validation naming the field (instead of reaching a query as an
 * out-of-range timestamp). Use in place of `@Type(() => Date) @IsDate()`.
 */
export function IsStorableDateTime(): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }) => {
      if (typeof value !== 'string') return value;
      const parsed = parseStorableDate(value);
      return parsed.ok ? parsed.date : value;
    }),
    ValidateBy({
      name: 'isStorableDateTime',
      validator: {
        validate: (v: unknown) => v instanceof Date && unstorableDateReason(v) === undefined,
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'value'} must be an ISO 8601 date-time between 0001-01-01 and 9999-12-31`,
      },
    }),
  );
}

/** A DTO string field that a text column can hold: no NUL character, no unpaired surrogate. */
export function IsStorableString(): PropertyDecorator {
  return ValidateBy({
    name: 'isStorableString',
    validator: {
      validate: (v: unknown) => typeof v !== 'string' || unstorableStringReason(v) === undefined,
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property ?? 'value'} ${unstorableStringReason(String(args?.value ?? '')) ?? 'cannot be stored'}`,
    },
  });
}
