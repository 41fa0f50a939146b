import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { defineOpenApiSchema } from '../../../common/openapi';
import { ErrorDetailDto } from '../../../common/errors/error-response.dto';
import { ExplanationDto } from '../../detection/dto/detection.dto';

class EventDetectionDto {
  @ApiProperty({ example: -0.08 }) score!: number;
  @ApiProperty({ enum: [-1, 1] }) prediction!: number;
  @ApiProperty({ nullable: true, type: 'integer' }) model_version!: number | null;
  @ApiPropertyOptional({ enum: ['warming', 'ready'], description: 'Scored by the cold-start baseline (no model yet)' })
  baseline?: 'warming' | 'ready';
  @ApiProperty() drift_alert!: boolean;
  @ApiPropertyOptional({ type: ExplanationDto }) explanation?: unknown;
}

class ItemResultDto {
  @ApiProperty() index!: number;
  @ApiProperty({ enum: ['accepted', 'rejected'] }) status!: 'accepted' | 'rejected';
  @ApiPropertyOptional() id?: string;
  @ApiPropertyOptional({ type: EventDetectionDto }) detection?: EventDetectionDto;
  @ApiPropertyOptional({ type: [ErrorDetailDto] }) errors?: ErrorDetailDto[];
}

export class IngestEnvelopeDto {
  @ApiProperty() accepted!: number;
  @ApiProperty() rejected!: number;
  @ApiProperty({ type: [ItemResultDto] }) results!: ItemResultDto[];
}

/**
 * One event as `POST /ingest` takes it (SPEC §4), for the OpenAPI document only: the handler reads
 * the raw body and validates each item itself, so a bad item is rejected alone. Fields beyond these
 * are kept as metadata, hence an open object.
 */
export const INGEST_EVENT_SCHEMA = defineOpenApiSchema('IngestEvent', {
  type: 'object',
  required: ['timestamp', 'service'],
  additionalProperties: true,
  properties: {
    id: { type: 'string', maxLength: 200, description: 'Client id: a retry with the same id stores nothing twice' },
    timestamp: { type: 'string', format: 'date-time', description: 'When the request happened (ISO 8601)' },
    service: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$', example: 'seo-optimizer' },
    duration_ms: { type: 'number', minimum: 0, description: 'Flat form of performance.duration_ms (ms)' },
    status_code: { type: 'integer', minimum: 100, maximum: 599, description: 'Flat form of http.response.status_code' },
    bytes: { type: 'integer', minimum: 0, description: 'Flat form of http.response.bytes' },
    http: {
      type: 'object',
      additionalProperties: true,
      description: "The seed's nested form",
      properties: {
        request: { type: 'object', additionalProperties: true, properties: { method: { type: 'string' }, path: { type: 'string' } } },
        response: {
          type: 'object',
          additionalProperties: true,
          properties: { status_code: { type: 'integer', minimum: 100, maximum: 599 }, bytes: { type: 'integer', minimum: 0 } },
        },
      },
    },
    performance: { type: 'object', additionalProperties: true, properties: { duration_ms: { type: 'number', minimum: 0, description: 'ms' } } },
  },
});
