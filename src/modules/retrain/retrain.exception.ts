import { HttpStatus } from '@nestjs/common';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';

/** Model registry and retraining errors. */
export class RetrainException extends AppException {
  static modelNotFound(version: number): RetrainException {
    return new RetrainException(HttpStatus.NOT_FOUND, ErrorCode.MODEL_NOT_FOUND, `Model version ${version} not found`);
  }

  static modelRejected(version: number): RetrainException {
    return new RetrainException(HttpStatus.CONFLICT, ErrorCode.MODEL_REJECTED, `Model version ${version} was rejected and cannot be activated`);
  }

  static inProgress(): RetrainException {
    return new RetrainException(HttpStatus.CONFLICT, ErrorCode.RETRAIN_IN_PROGRESS, 'A retraining of this tenant is already running');
  }

  static noData(detail: string): RetrainException {
    return new RetrainException(HttpStatus.UNPROCESSABLE_ENTITY, ErrorCode.NO_TRAINING_DATA, `No training data: ${detail}`);
  }
}
