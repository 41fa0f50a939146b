import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID, Matches } from 'class-validator';
import { ListQueryDto } from '../../../common/pagination/list-query.dto';
import { DetectionDto } from '../../detection/dto/detection.dto';

const SERVICE = /^[A-Za-z0-9_.-]{1,128}$/;
export const INCIDENT_STATUSES = ['open', 'resolved'] as const;
export const INCIDENT_SIGNALS = ['traffic', 'errors', 'latency', 'payload', 'anomalies'] as const;

export class IncidentsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'seo-optimizer' })
  @IsOptional()
  @Matches(SERVICE, { message: 'service must be 1-128 characters of [A-Za-z0-9_.-]' })
  service?: string;

  @ApiPropertyOptional({ enum: INCIDENT_STATUSES })
  @IsOptional()
  @IsIn(INCIDENT_STATUSES)
  status?: (typeof INCIDENT_STATUSES)[number];
}

export class IncidentIdParamDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id!: string;
}

export class IncidentSignalDto {
  @ApiProperty({ enum: INCIDENT_SIGNALS, description: 'traffic (requests/min), errors (server-error share), latency (typical ms), payload (typical response bytes), anomalies (share of requests the per-event model flagged)' })
  signal!: string;
  @ApiProperty({ type: String, nullable: true, example: 'latency', description: 'Metric name of the series detections of this signal' })
  metric!: string | null;
  @ApiProperty({ enum: ['warning', 'critical'] }) severity!: string;
  @ApiProperty({ enum: ['up', 'down'] }) direction!: string;
  @ApiProperty({ description: 'Event time of the first evidence of this signal', example: '2026-11-30T14:02:00.000Z' }) first_at!: string;
  @ApiProperty({ description: 'Event time (minute) of the latest evidence of this signal', example: '2026-11-30T14:07:00.000Z' }) last_at!: string;
  @ApiProperty({ type: Number, nullable: true, example: 1430.5, description: "The strongest window's value, in the signal's unit" }) value!: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 236.1, description: 'The baseline it was judged against, same unit' }) expected!: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 6.06, description: 'value / expected (errors: share above the baseline)' }) ratio!: number | null;
  @ApiProperty({ type: String, nullable: true, example: 'typical latency 1430.5 ms over 3 min, ×6.1 the usual 236.1 ms' }) summary!: string | null;
  @ApiProperty({ example: 6, description: 'Series detections of this signal in the incident' }) detections!: number;
}

export class IncidentDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'marketing' }) tenant!: string;
  @ApiProperty({ example: 'seo-optimizer' }) service!: string;
  @ApiProperty({ enum: INCIDENT_STATUSES }) status!: string;
  @ApiProperty({ enum: ['info', 'warning', 'critical'] }) severity!: string;
  @ApiProperty({ type: String, nullable: true, enum: ['up', 'down'], description: 'Direction of the signal that opened it' }) direction!: string | null;
  @ApiProperty({ description: 'Event time of its first evidence (since when)', example: '2026-11-30T14:02:00.000Z' }) started_at!: string;
  @ApiProperty({ description: 'Event time at which the opening evidence was complete', example: '2026-11-30T14:03:00.000Z' }) detected_at!: string;
  @ApiProperty({ description: 'Event time (minute) of the latest evidence', example: '2026-11-30T14:07:00.000Z' }) last_evidence_at!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Event time it ended (recovery); null while open', example: null }) ended_at!: string | null;
  @ApiProperty({ type: [IncidentSignalDto] }) signals!: IncidentSignalDto[];
  @ApiProperty({ example: 42, description: 'Anomalies (series evidence and per-event anomalies) that are part of it' }) anomaly_count!: number;
  @ApiProperty({ description: 'When it was recorded (wall clock)', example: '2026-11-30T14:05:01.000Z' }) created_at!: string;
  @ApiProperty({ description: 'When it last changed (wall clock)', example: '2026-11-30T14:09:01.000Z' }) updated_at!: string;
}

export class IncidentListDto {
  @ApiProperty({ type: [IncidentDto] }) items!: IncidentDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class IncidentDetailDto extends IncidentDto {
  @ApiProperty({ type: [DetectionDto], description: 'The anomalies that make it: series evidence first, then per-event anomalies, most anomalous first (at most 500)' })
  anomalies!: DetectionDto[];
}
