import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { ListQueryDto, TenantQueryDto } from '../../common/pagination/list-query.dto';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { ModelVersionRow } from '../store/model.repository';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { ModelListDto, ModelVersionDto, ModelVersionParamDto, RetrainResultDto } from './dto/model.dto';
import { PG_INT4_MAX } from '../../common/validation/storable';
import { ModelRegistryService } from './model-registry.service';
import { RetrainException } from './retrain.exception';
import { RetrainService } from './retrain.service';

const toDto = (m: ModelVersionRow): ModelVersionDto => ({
  version: m.version,
  status: m.status,
  source: m.source,
  rows: m.rows,
  time_from: m.timeFrom?.toISOString() ?? null,
  time_to: m.timeTo?.toISOString() ?? null,
  params: m.params,
  stats: m.stats,
  validation: (m.stats.validation as Record<string, unknown> | undefined) ?? null,
  rejected_reason: typeof m.stats.rejectedReason === 'string' ? m.stats.rejectedReason : null,
  created_at: m.createdAt.toISOString(),
  activated_at: m.activatedAt?.toISOString() ?? null,
});

const isCursor = (v: unknown): v is { v: number } => {
  const n = (v as { v?: unknown })?.v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= PG_INT4_MAX;
};

@ApiTags('models')
@ApiTenantScoped()
@Controller()
export class ModelsController {
  constructor(
    private readonly registry: ModelRegistryService,
    private readonly retrain: RetrainService,
  ) {}

  @Get('models')
  @ApiOperation({ summary: "The tenant's model versions with their training stats, newest first" })
  @ApiOkResponse({ type: ModelListDto })
  async list(@CurrentTenant() tenant: TenantContext, @Query() q: ListQueryDto): Promise<ModelListDto> {
    const before = q.cursor ? decodeCursor(q.cursor, isCursor).v : undefined;
    const rows = await this.registry.list(tenant.id, q.limit + 1, before);
    const page = rows.slice(0, q.limit);
    return {
      items: page.map(toDto),
      nextCursor: rows.length > q.limit ? encodeCursor({ v: page[page.length - 1].version }) : null,
    };
  }

  @Post('models/:version/activate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Activate a stored version (rollback); every replica serves it at once' })
  @ApiOkResponse({ type: ModelVersionDto })
  @ApiResponse({ status: 404, type: ErrorResponseDto, description: 'MODEL_NOT_FOUND' })
  @ApiResponse({ status: 409, type: ErrorResponseDto, description: 'MODEL_REJECTED' })
  async activate(
    @CurrentTenant() tenant: TenantContext,
    @Param() { version }: ModelVersionParamDto,
    @Query() _q: TenantQueryDto,
  ): Promise<ModelVersionDto> {
    const found = await this.registry.find(tenant.id, version);
    if (!found) throw RetrainException.modelNotFound(version);
    if (found.status === 'rejected') throw RetrainException.modelRejected(version);
    await this.registry.activate(tenant.id, version);
    return toDto((await this.registry.find(tenant.id, version))!);
  }

  @Post('retrain')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Retrain the tenant now (Loki, else stored events, else the dataset file)',
    description:
      'Trains on the lookback less its newest tenth, which is held out: the new version becomes active when it trained on enough rows ' +
      'and validates against the active one on the held-out traffic and the anomalies users gave feedback on; otherwise it is stored as rejected with the reason.',
  })
  @ApiOkResponse({ type: RetrainResultDto })
  @ApiResponse({ status: 409, type: ErrorResponseDto, description: 'RETRAIN_IN_PROGRESS' })
  @ApiResponse({ status: 422, type: ErrorResponseDto, description: 'NO_TRAINING_DATA' })
  async retrainNow(@CurrentTenant() tenant: TenantContext, @Query() _q: TenantQueryDto): Promise<RetrainResultDto> {
    const r = await this.retrain.retrain(tenant.id, 'manual');
    return {
      version: r.version,
      status: r.status,
      source: r.source,
      rejected_reason: typeof r.stats.rejectedReason === 'string' ? r.stats.rejectedReason : null,
      stats: r.stats,
    };
  }
}
