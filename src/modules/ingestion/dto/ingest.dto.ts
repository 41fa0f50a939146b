import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorDetailDto } from '../../../common/errors/error-response.dto';
import { ExplanationDto } from '../../detection/dto/detection.dto';

class EventDetectionDto {
  @ApiProperty({ example: -0.08 }) score!: number;
  @ApiProperty({ enum: [-1, 1] }) prediction!: number;
  @ApiProperty({ nullable: true, type: Number }) model_version!: number | null;
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
