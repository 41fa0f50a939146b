import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AppException } from '../../common/errors/app.exception';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { TenantQueryDto } from '../../common/pagination/list-query.dto';
import { parseStorableDate } from '../../common/validation/storable';
import { DetectionRow } from '../store/event.repository';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { DetectionService } from './detection.service';
import {
  DetectionDto,
  DetectionListDto,
  DetectionsQueryDto,
  FeedbackDto,
  LatestAnomaliesQueryDto,
  LatestAnomalyDto,
  MetricsSummaryDto,
} from './dto/detection.dto';

const isCursor = (v: unknown): v is { ts: string; id: string } =>
  typeof v === 'object' && v !== null && typeof (v as { ts?: unknown }).ts === 'string' && typeof (v as { id?: unknown }).id === 'string' &&
  parseStorableDate((v as { ts: string }).ts).ok && /^[0-9a-f-]{36}$/.test((v as { id: string }).id);

export function toDetectionDto(tenant: string, d: DetectionRow): DetectionDto {
  return {
    id: d.id,
    kind: d.kind,
    timestamp: d.ts.toISOString(),
    service: d.service,
    score: d.score,
    prediction: d.prediction,
    tenant,
    drift_alert: d.driftAlert,
    model_version: d.modelVersion,
    ...(d.baseline ? { baseline: true } : {}),
    explanation: (d.explanation as DetectionDto['explanation']) ?? null,
    metadata: d.metadata,
    event_id: d.eventId,
    feedback: d.feedback ?? null,
    ...(d.kind === 'series' ? { metric: d.metric, value: d.value, expected: d.expected, likelihood: d.likelihood } : {}),
  };
}

@ApiTags('detections')
@ApiTenantScoped()
@Controller()
export class DetectionsController {
  constructor(private readonly detection: DetectionService) {}

  @Get('latest-anomalies')
  @ApiOperation({ summary: "Newest anomalies as a plain array (the seed's demo shape)" })
  @ApiOkResponse({ type: [LatestAnomalyDto] })
  async latest(@CurrentTenant() tenant: TenantContext, @Query() q: LatestAnomaliesQueryDto): Promise<LatestAnomalyDto[]> {
    const rows = await this.detection.list(tenant.id, { service: q.service, since: q.since }, q.limit);
    return rows.map((d) => ({
      timestamp: d.ts.toISOString(),
      service: d.service,
      score: d.score,
      prediction: d.prediction,
      tenant: tenant.id,
      // For a latency series the value is the latency.
      duration_ms: d.durationMs ?? (d.kind === 'series' && d.metric?.startsWith('latency') ? (d.value ?? null) : null),
      status_code: d.statusCode,
      id: d.id,
      kind: d.kind,
      explanation: (d.explanation as LatestAnomalyDto['explanation']) ?? null,
    }));
  }

  @Get('detections')
  @ApiOperation({ summary: 'Anomaly history, newest first, with cursor paging' })
  @ApiOkResponse({ type: DetectionListDto })
  async list(@CurrentTenant() tenant: TenantContext, @Query() q: DetectionsQueryDto): Promise<DetectionListDto> {
    const after = q.cursor ? decodeCursor(q.cursor, isCursor) : undefined;
    const rows = await this.detection.list(
      tenant.id,
      { service: q.service, kind: q.kind, since: q.since, until: q.until },
      q.limit + 1,
      after ? { ts: new Date(after.ts), id: after.id } : undefined,
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((d) => toDetectionDto(tenant.id, d)),
      nextCursor: rows.length > q.limit && last ? encodeCursor({ ts: last.ts.toISOString(), id: last.id }) : null,
    };
  }

  @Post('detections/:id/feedback')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Mark a detection as a false positive or a confirmed anomaly',
    description: 'A false positive stops counting toward retraining and its event stays in training data; a confirmed anomaly is kept out of training.',
  })
  @ApiOkResponse({ type: DetectionDto })
  @ApiResponse({ status: 404, type: ErrorResponseDto, description: 'NOT_FOUND' })
  async feedback(
    @CurrentTenant() tenant: TenantContext,
    @Param('id') id: string,
    @Body() body: FeedbackDto,
    @Query() _q: TenantQueryDto,
  ): Promise<DetectionDto> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
      throw AppException.validation([{ field: 'id', reason: 'must be a UUID' }]);
    }
    const row = await this.detection.feedback(tenant.id, id, body.label);
    if (!row) throw AppException.notFound('Detection');
    return toDetectionDto(tenant.id, row);
  }

  @Get('metrics')
  @ApiOperation({ summary: "The tenant's detection summary: counts, anomaly rate, scores, drift, model" })
  @ApiOkResponse({ type: MetricsSummaryDto })
  metrics(@CurrentTenant() tenant: TenantContext, @Query() _q: TenantQueryDto): Promise<MetricsSummaryDto> {
    return this.detection.summary(tenant.id);
  }
}
