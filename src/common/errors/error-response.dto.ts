import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorCode } from './error-code';

export class ErrorDetailDto {
  @ApiProperty({ example: 'timestamp' })
  field!: string;

  @ApiProperty({ example: 'missing' })
  reason!: string;
}

/** The one error shape (SPEC §4), for the OpenAPI document. */
export class ErrorResponseDto {
  @ApiProperty({ example: 403 })
  statusCode!: number;

  @ApiProperty({
    enum: ErrorCode,
    enumName: 'ErrorCode',
    example: ErrorCode.TENANT_FORBIDDEN,
    description: 'Stable UPPER_SNAKE code; the same enum the exception filter writes (src/common/errors/error-code.ts)',
  })
  code!: ErrorCode;

  @ApiProperty({ example: 'Forbidden' })
  error!: string;

  @ApiProperty({ example: 'This API key cannot access the requested tenant' })
  message!: string;

  @ApiPropertyOptional({ type: [ErrorDetailDto] })
  details?: ErrorDetailDto[];

  @ApiPropertyOptional({ description: 'Correlates with the server logs' })
  requestId?: string;
}
