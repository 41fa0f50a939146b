import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { ListQueryDto, TenantQueryDto } from '../../../common/pagination/list-query.dto';
import { IsStorableDateTime } from '../../../common/validation/storable.decorators';

const SERVICE = /^[A-Za-z0-9_.-]{1,128}$/;

export class DetectionsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'seo-optimizer' })
  @IsOptional()
  @Matches(SERVICE, { message: 'service must be 1-128 characters of [A-Za-z0-9_.-]' })
  service?: string;

  @ApiPropertyOptional({ enum: ['event', 'series'] })
  @IsOptional()
  @IsIn(['event', 'series'])
  kind?: 'event' | 'series';

  @ApiPropertyOptional({ description: 'ISO 8601; detections at or after', example: '2025-11-14T00:00:00Z' })
  @IsOptional()
  @IsStorableDateTime()
  since?: Date;

  @ApiPropertyOptional({ description: 'ISO 8601; detections before' })
  @IsOptional()
  @IsStorableDateTime()
  until?: Date;
}

export class LatestAnomaliesQueryDto extends TenantQueryDto {
  @ApiPropertyOptional({ example: 'seo-optimizer' })
  @IsOptional()
  @Matches(SERVICE, { message: 'service must be 1-128 characters of [A-Za-z0-9_.-]' })
  service?: string;

  @ApiPropertyOptional({ description: 'ISO 8601; anomalies at or after' })
  @IsOptional()
  @IsStorableDateTime()
  since?: Date;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit: number = 20;
}

export class ExplanationFeatureDto {
  @ApiProperty({ example: 'duration_ms' }) name!: string;
  @ApiProperty({ type: Number, example: 1680, nullable: true }) value!: number | null;
  @ApiProperty({ type: Number, example: 180, nullable: true }) p50!: number | null;
  @ApiProperty({ type: Number, example: 420, nullable: true }) p99!: number | null;
  @ApiProperty({ type: Number, example: 0.71, description: 'Share of the isolation-path shortening due to this field' }) contribution!: number;
}

export class ExplanationDto {
  @ApiProperty({ example: 'duration_ms 1680 is above the training p99 (420)' }) summary!: string;
  @ApiProperty({ type: [ExplanationFeatureDto] }) features!: ExplanationFeatureDto[];
}

export class DetectionDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['event', 'series'] }) kind!: 'event' | 'series';
  @ApiProperty({ format: 'date-time', example: '2025-11-14T00:00:00.000Z' }) timestamp!: string;
  @ApiProperty({ example: 'seo-optimizer' }) service!: string;
  @ApiProperty({ example: -0.12, description: 'decision_function convention: negative = anomalous' }) score!: number;
  @ApiProperty({ enum: [-1, 1] }) prediction!: number;
  @ApiProperty({ example: 'marketing' }) tenant!: string;
  @ApiProperty() drift_alert!: boolean;
  @ApiProperty({ type: 'integer', nullable: true, example: 3, description: 'null when a cold-start baseline scored it' }) model_version!: number | null;
  @ApiPropertyOptional({ example: true, description: 'Present (true) when a cold-start baseline scored it' }) baseline?: boolean;
  @ApiPropertyOptional({ type: ExplanationDto, nullable: true }) explanation!: ExplanationDto | null;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, nullable: true, description: 'The event fields kept as metadata' })
  metadata!: Record<string, unknown> | null;
  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true }) event_id?: string | null;
  @ApiPropertyOptional({ nullable: true, enum: ['false_positive', 'confirmed'] }) feedback?: string | null;
  @ApiPropertyOptional({ type: String, example: 'latency_p95', description: 'Series detections: the metric judged' }) metric?: string | null;
  @ApiPropertyOptional({ type: Number, example: 1850, description: "Series detections: the minute's value (ms for latencies)" }) value?: number | null;
  @ApiPropertyOptional({ type: Number, example: 420, description: 'Series detections: the value expected' }) expected?: number | null;
  @ApiPropertyOptional({ type: Number, minimum: 0, maximum: 1, example: 0.999, description: 'Series detections: likelihood in [0, 1]' })
  likelihood?: number | null;
}

export class DetectionListDto {
  @ApiProperty({ type: [DetectionDto] }) items!: DetectionDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class LatestAnomalyDto {
  @ApiProperty({ format: 'date-time', example: '2025-11-14T00:00:00.000Z' }) timestamp!: string;
  @ApiProperty() service!: string;
  @ApiProperty() score!: number;
  @ApiProperty({ enum: [-1, 1] }) prediction!: number;
  @ApiProperty() tenant!: string;
  @ApiProperty({ type: Number, nullable: true, example: 1680 }) duration_ms!: number | null;
  @ApiProperty({ type: 'integer', nullable: true, example: 200 }) status_code!: number | null;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['event', 'series'] }) kind!: string;
  @ApiProperty({ type: ExplanationDto, nullable: true }) explanation!: ExplanationDto | null;
}

class ScoreStatsDto {
  @ApiProperty({ type: Number, nullable: true }) min!: number | null;
  @ApiProperty({ type: Number, nullable: true }) mean!: number | null;
  @ApiProperty({ type: Number, nullable: true }) p05!: number | null;
  @ApiProperty({ type: Number, nullable: true }) p50!: number | null;
  @ApiProperty({ type: Number, nullable: true }) p95!: number | null;
  @ApiProperty({ description: 'Latest events the statistics cover' }) sample!: number;
}

class DriftDto {
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' }, example: { log_duration_ms: 0.03, status_class: 0, log_bytes: 0.01 } })
  psi!: Record<string, number>;
  @ApiProperty() drift_alert!: boolean;
  @ApiProperty({ example: 0.2 }) threshold!: number;
  @ApiProperty() sample!: number;
}

export class MetricsSummaryDto {
  @ApiProperty() tenant!: string;
  @ApiProperty() events_total!: number;
  @ApiProperty() anomalies_total!: number;
  @ApiProperty() anomaly_rate!: number;
  @ApiProperty({ type: ScoreStatsDto }) score!: ScoreStatsDto;
  @ApiProperty({ type: DriftDto }) drift!: DriftDto;
  @ApiProperty({ nullable: true, type: Number }) active_model_version!: number | null;
  @ApiProperty({ nullable: true, type: String }) last_trained_at!: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'The event-time watermark: the newest event time minus SERIES_GRACE_SECONDS (moved on by the wall clock only for a tenant quiet for SERIES_IDLE_SECONDS); the series job closes minutes up to it (see series_closed_until)',
  })
  series_watermark!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'The newest event time seen for the tenant' }) newest_event_time!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Event time up to which minutes have been closed and judged so far (catches up with series_watermark)' })
  series_closed_until!: string | null;
  @ApiProperty({ description: 'Anomalies stored but not yet through the incident policy (0 once alerting has caught up)' }) incident_backlog!: number;
}

export class FeedbackDto {
  @ApiProperty({ enum: ['false_positive', 'confirmed'], description: 'false_positive: stops counting toward retraining, its event stays in training data; confirmed: kept out of training' })
  @IsIn(['false_positive', 'confirmed'], { message: 'label must be false_positive or confirmed' })
  label!: 'false_positive' | 'confirmed';
}
