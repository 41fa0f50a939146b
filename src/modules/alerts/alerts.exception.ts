import { HttpStatus } from '@nestjs/common';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';

/** Errors of the alerts module (alerts and silences). */
export class AlertsException extends AppException {
  static silenceNotFound(id: string): AlertsException {
    return new AlertsException(HttpStatus.NOT_FOUND, ErrorCode.SILENCE_NOT_FOUND, `Silence ${id} not found`);
  }

  static incidentNotFound(id: string): AlertsException {
    return new AlertsException(HttpStatus.NOT_FOUND, ErrorCode.INCIDENT_NOT_FOUND, `Incident ${id} not found`);
  }

  static invalidSilence(field: string, reason: string): AlertsException {
    return new AlertsException(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, 'Invalid silence', [
      { field, reason },
    ]);
  }
}
