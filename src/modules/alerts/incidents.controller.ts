import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { toDetectionDto } from '../detection/detections.controller';
import { IncidentRow } from '../store/incident.repository';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { isSeqCursor } from './alerts.controller';
import { AlertsException } from './alerts.exception';
import { AlertsService } from './alerts.service';
import { IncidentDetailDto, IncidentDto, IncidentIdParamDto, IncidentListDto, IncidentsQueryDto } from './dto/incident.dto';

/** Anomalies returned with one incident. */
const MAX_ANOMALIES = 500;

export function toIncidentDto(tenant: string, i: IncidentRow): IncidentDto {
  return {
    id: i.id,
    tenant,
    service: i.service,
    status: i.status,
    severity: i.severity,
    direction: i.direction,
    started_at: i.startedAt.toISOString(),
    detected_at: i.detectedAt.toISOString(),
    last_evidence_at: i.lastEvidenceAt.toISOString(),
    ended_at: i.endedAt?.toISOString() ?? null,
    signals: i.signals.map((s) => ({
      signal: s.signal,
      metric: s.metric,
      severity: s.severity,
      direction: s.direction,
      first_at: s.firstAt,
      last_at: s.lastAt,
      value: s.value,
      expected: s.expected,
      ratio: s.ratio,
      summary: s.summary,
      detections: s.detections,
    })),
    anomaly_count: i.anomalyCount,
    created_at: i.createdAt.toISOString(),
    updated_at: i.updatedAt.toISOString(),
  };
}

@ApiTags('incidents')
@ApiTenantScoped()
@Controller('incidents')
export class IncidentsController {
  constructor(private readonly alerts: AlertsService) {}

  @Get()
  @ApiOperation({
    summary: 'Incidents, newest first',
    description:
      'An incident is opened per service on evidence over a window (a per-minute signal — traffic, server errors, latency, ' +
      'response size, or more per-event anomalies than the model explains — judged against its baseline), never by a single ' +
      'request. Times are event times: when the requests happened.',
  })
  @ApiOkResponse({ type: IncidentListDto })
  async list(@CurrentTenant() tenant: TenantContext, @Query() q: IncidentsQueryDto): Promise<IncidentListDto> {
    const after = q.cursor ? decodeCursor(q.cursor, isSeqCursor) : undefined;
    const rows = await this.alerts.listIncidents(tenant.id, { service: q.service, status: q.status }, q.limit + 1, after?.seq);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((i) => toIncidentDto(tenant.id, i)),
      nextCursor: rows.length > q.limit && last ? encodeCursor({ seq: last.seq }) : null,
    };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One incident with the anomalies that make it' })
  @ApiOkResponse({ type: IncidentDetailDto })
  @ApiNotFoundResponse({ description: 'INCIDENT_NOT_FOUND: no incident with this id for the tenant' })
  async get(@CurrentTenant() tenant: TenantContext, @Param() p: IncidentIdParamDto): Promise<IncidentDetailDto> {
    const found = await this.alerts.findIncident(tenant.id, p.id, MAX_ANOMALIES);
    if (!found) throw AlertsException.incidentNotFound(p.id);
    return { ...toIncidentDto(tenant.id, found.incident), anomalies: found.anomalies.map((d) => toDetectionDto(tenant.id, d)) };
  }
}
