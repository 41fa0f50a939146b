/** Stable error codes of the API's error shape (SPEC §4). Clients and tests match on these. */
export enum ErrorCode {
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  INVALID_BODY = 'INVALID_BODY',
  MISSING_API_KEY = 'MISSING_API_KEY',
  INVALID_API_KEY = 'INVALID_API_KEY',
  METRICS_TOKEN_REQUIRED = 'METRICS_TOKEN_REQUIRED',
  TENANT_FORBIDDEN = 'TENANT_FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  ROUTE_NOT_FOUND = 'ROUTE_NOT_FOUND',
  METHOD_NOT_ALLOWED = 'METHOD_NOT_ALLOWED',
  CONFLICT = 'CONFLICT',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  RATE_LIMITED = 'RATE_LIMITED',
  DATABASE_UNAVAILABLE = 'DATABASE_UNAVAILABLE',
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
  NOT_READY = 'NOT_READY',
  SILENCE_NOT_FOUND = 'SILENCE_NOT_FOUND',
  MODEL_NOT_FOUND = 'MODEL_NOT_FOUND',
  MODEL_REJECTED = 'MODEL_REJECTED',
  RETRAIN_IN_PROGRESS = 'RETRAIN_IN_PROGRESS',
  NO_TRAINING_DATA = 'NO_TRAINING_DATA',
  INTERNAL_ERROR = 'INTERNAL_ERROR',
}

export interface ErrorDetail {
  field: string;
  reason: string;
}

/** The one error body every failing request gets. */
export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
  details?: ErrorDetail[];
  requestId?: string;
}
