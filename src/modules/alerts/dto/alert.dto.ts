import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { ListQueryDto } from '../../../common/pagination/list-query.dto';

const SERVICE = /^[A-Za-z0-9_.-]{1,128}$/;
export const ALERT_STATUSES = ['pending', 'sending', 'sent', 'failed', 'skipped'] as const;
export const ALERT_KINDS = ['open', 'escalate', 'renotify', 'recovery'] as const;

export class AlertsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'seo-optimizer' })
  @IsOptional()
  @Matches(SERVICE, { message: 'service must be 1-128 characters of [A-Za-z0-9_.-]' })
  service?: string;

  @ApiPropertyOptional({ enum: ALERT_STATUSES, description: 'Delivery status' })
  @IsOptional()
  @IsIn(ALERT_STATUSES)
  status?: (typeof ALERT_STATUSES)[number];

  @ApiPropertyOptional({ enum: ALERT_KINDS })
  @IsOptional()
  @IsIn(ALERT_KINDS)
  kind?: (typeof ALERT_KINDS)[number];
}

export class AlertDeliveryDto {
  @ApiProperty({
    enum: ALERT_STATUSES,
    description:
      'pending (waiting for its first or next attempt), sending, sent, failed (rejected by Slack or out of attempts), skipped (no webhook, or a recovery while silenced)',
  })
  status!: string;

  @ApiProperty({ example: 1 }) attempts!: number;

  @ApiProperty({ nullable: true, type: String, description: 'When the next attempt is due (pending only)' })
  next_attempt_at!: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    example: 'rate_limited',
    description: 'ok, rate_limited, server_error, rejected, timeout, interrupted, network, not_configured, silenced',
  })
  last_outcome!: string | null;

  @ApiProperty({ nullable: true, type: String, example: '429 rate limited (Retry-After 1s)' }) last_error!:
    string | null;

  @ApiProperty({
    description: 'Attempts with no answer (timeout, sender gone): Slack may have shown the message more than once',
  })
  uncertain_attempts!: number;

  @ApiProperty({
    nullable: true,
    enum: ['tenant', 'default'],
    description: "Webhook used: the tenant's own (TENANT_SLACK_WEBHOOKS) or SLACK_WEBHOOK_URL",
  })
  target!: string | null;

  @ApiProperty({ nullable: true, type: String }) sent_at!: string | null;
}

export class AlertDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({
    format: 'uuid',
    description: 'The incident: the id of its opening alert, shared by its re-notifications and recovery',
  })
  incident_id!: string;
  @ApiProperty({ example: 'marketing' }) tenant!: string;
  @ApiProperty({ example: 'seo-optimizer' }) service!: string;
  @ApiProperty({ enum: ALERT_KINDS }) kind!: string;
  @ApiProperty({ enum: ['info', 'warning', 'critical'] }) severity!: string;
  @ApiProperty({ example: 12, description: 'Anomalies grouped into this message (a recovery: the whole incident)' })
  anomaly_count!: number;
  @ApiProperty() first_seen!: string;
  @ApiProperty() last_seen!: string;
  @ApiProperty({
    nullable: true,
    type: Number,
    example: -0.31,
    description: 'Score of the most anomalous grouped anomaly',
  })
  score!: number | null;
  @ApiProperty({ nullable: true, type: String, example: 'duration_ms 1680 is above the training p99 (420)' }) summary!:
    string | null;
  @ApiProperty({ nullable: true, format: 'uuid', type: String, description: 'The most anomalous grouped detection' })
  detection_id!: string | null;
  @ApiProperty({ nullable: true, enum: ['baseline', 'model'] }) scorer!: string | null;
  @ApiProperty({ type: AlertDeliveryDto }) delivery!: AlertDeliveryDto;
  @ApiProperty({ nullable: true, type: String, description: 'When the incident recovered' }) resolved_at!:
    string | null;
  @ApiProperty() created_at!: string;
}

export class AlertListDto {
  @ApiProperty({ type: [AlertDto] }) items!: AlertDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}
