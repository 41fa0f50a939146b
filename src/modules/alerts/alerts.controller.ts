import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { AlertRow } from '../store/alert.repository';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { AlertsService } from './alerts.service';
import { AlertDto, AlertListDto, AlertsQueryDto } from './dto/alert.dto';

export const isSeqCursor = (v: unknown): v is { seq: number } =>
  typeof v === 'object' &&
  v !== null &&
  Number.isSafeInteger((v as { seq?: unknown }).seq) &&
  (v as { seq: number }).seq > 0;

export function toAlertDto(tenant: string, a: AlertRow): AlertDto {
  return {
    id: a.id,
    incident_id: a.incidentId,
    tenant,
    service: a.service,
    kind: a.kind,
    severity: a.severity,
    anomaly_count: a.anomalyCount,
    first_seen: a.firstSeen.toISOString(),
    last_seen: a.lastSeen.toISOString(),
    score: a.worst?.score ?? null,
    summary: a.worst?.explanation?.summary ?? null,
    detection_id: a.worst?.detectionId ?? null,
    scorer: a.worst?.scorer ?? null,
    delivery: {
      status: a.status,
      attempts: a.attempts,
      next_attempt_at: a.status === 'pending' ? a.nextAttemptAt.toISOString() : null,
      last_outcome: a.lastOutcome,
      last_error: a.lastError,
      uncertain_attempts: a.uncertainAttempts,
      target: a.target,
      sent_at: a.sentAt?.toISOString() ?? null,
    },
    resolved_at: a.resolvedAt?.toISOString() ?? null,
    created_at: a.createdAt.toISOString(),
  };
}

@ApiTags('alerts')
@ApiTenantScoped()
@Controller('alerts')
export class AlertsController {
  constructor(private readonly alerts: AlertsService) {}

  @Get()
  @ApiOperation({
    summary: 'Alert history with delivery status, newest first',
    description:
      'One item per Slack message: `open` (first anomaly of a service), `renotify` (still going on), `recovery`. ' +
      'Anomalies within the cooldown join the open alert: `anomaly_count` grows instead of new messages.',
  })
  @ApiOkResponse({ type: AlertListDto })
  async list(@CurrentTenant() tenant: TenantContext, @Query() q: AlertsQueryDto): Promise<AlertListDto> {
    const after = q.cursor ? decodeCursor(q.cursor, isSeqCursor) : undefined;
    const rows = await this.alerts.list(
      tenant.id,
      { service: q.service, status: q.status, kind: q.kind },
      q.limit + 1,
      after?.seq,
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((a) => toAlertDto(tenant.id, a)),
      nextCursor: rows.length > q.limit && last ? encodeCursor({ seq: last.seq }) : null,
    };
  }
}
