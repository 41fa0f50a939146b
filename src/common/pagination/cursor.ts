import { AppException } from '../errors/app.exception';

/** Opaque list cursors: base64url JSON of the last item's sort key. */
export function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** @throws AppException (400, field `cursor`) when the cursor was not made by {@link encodeCursor} or fails `check`. */
export function decodeCursor<T>(cursor: string, check: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!check(value)) throw AppException.validation([{ field: 'cursor', reason: 'is not a cursor returned by this endpoint' }]);
  return value;
}
