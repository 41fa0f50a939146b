import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ModelVersionDto {
  @ApiProperty({ example: 3 }) version!: number;
  @ApiProperty({ enum: ['active', 'inactive', 'rejected'] }) status!: string;
  @ApiProperty({ example: 'events', description: 'Where the training data came from: loki, events, dataset, file' }) source!: string;
  @ApiProperty({ example: 50146 }) rows!: number;
  @ApiProperty({ nullable: true, type: String }) time_from!: string | null;
  @ApiProperty({ nullable: true, type: String }) time_to!: string | null;
  @ApiProperty({ type: Object, example: { nEstimators: 100, maxSamples: 256, contamination: 0.01 } }) params!: Record<string, unknown>;
  @ApiProperty({ type: Object, description: 'rows, time range, per sub-model rows, offset and score distribution' }) stats!: Record<string, unknown>;
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
  @ApiProperty({ type: Object }) stats!: Record<string, unknown>;
}
