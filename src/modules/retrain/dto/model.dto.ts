import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';
import { PG_INT4_MAX } from '../../../common/validation/storable';

/** `/models/{version}`: a version number the `models.version` column (int4) can hold. */
export class ModelVersionParamDto {
  @ApiProperty({ minimum: 1, maximum: PG_INT4_MAX, example: 3 })
  @Type(() => Number)
  @IsInt({ message: 'version must be an integer' })
  @Min(1, { message: 'version must be at least 1' })
  @Max(PG_INT4_MAX, { message: `version must be at most ${PG_INT4_MAX}` })
  version!: number;
}

export class ModelVersionDto {
  @ApiProperty({ example: 3 }) version!: number;
  @ApiProperty({ enum: ['active', 'inactive', 'rejected'] }) status!: string;
  @ApiProperty({ example: 'events', description: 'Where the training data came from: loki, events, dataset, file' }) source!: string;
  @ApiProperty({ example: 50146 }) rows!: number;
  @ApiProperty({ nullable: true, type: String }) time_from!: string | null;
  @ApiProperty({ nullable: true, type: String }) time_to!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { nEstimators: 100, maxSamples: 256, contamination: 0.01 } }) params!: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'rows, time range, per sub-model rows, offset and score distribution' }) stats!: Record<string, unknown>;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description:
      'Champion/challenger figures of a retrained version: held-out recent events, anomalies it and the then active version raised on them, ' +
      'the bound, confirmed and false-positive anomalies each flags, passed, failures. Null for versions not validated (CLI, file import).',
  })
  validation!: Record<string, unknown> | null;
  @ApiProperty({ nullable: true, type: String, example: 'misses 12 of 12 confirmed anomalies that v3 flags' }) rejected_reason!: string | null;
  @ApiProperty() created_at!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) activated_at!: string | null;
}

export class ModelListDto {
  @ApiProperty({ type: [ModelVersionDto] }) items!: ModelVersionDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class RetrainResultDto {
  @ApiProperty({ example: 4 }) version!: number;
  @ApiProperty({ enum: ['active', 'rejected'] }) status!: string;
  @ApiProperty({ enum: ['loki', 'events', 'dataset'] }) source!: string;
  @ApiProperty({ nullable: true, type: String }) rejected_reason!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) stats!: Record<string, unknown>;
}
