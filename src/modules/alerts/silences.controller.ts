import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { TenantQueryDto } from '../../common/pagination/list-query.dto';
import { SilenceRow } from '../store/silence.repository';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { isSeqCursor } from './alerts.controller';
import { CreateSilenceDto, SilenceDto, SilenceIdParamDto, SilenceListDto, SilencesQueryDto } from './dto/silence.dto';
import { SilencesService } from './silences.service';

function toSilenceDto(tenant: string, s: SilenceRow): SilenceDto {
  return {
    id: s.id,
    tenant,
    service: s.service,
    reason: s.reason,
    starts_at: s.startsAt.toISOString(),
    expires_at: s.expiresAt.toISOString(),
    ended_at: s.endedAt?.toISOString() ?? null,
    active: s.active,
    created_at: s.createdAt.toISOString(),
  };
}

@ApiTags('alerts')
@ApiTenantScoped()
@Controller('silences')
export class SilencesController {
  constructor(private readonly silences: SilencesService) {}

  @Post()
  @ApiOperation({
    summary: 'Silence a service (or * for all) until an expiry',
    description:
      'While a silence is in force no message is sent for the service: new anomalies open no alert, an alert already open ' +
      'keeps counting without re-notifying, and its recovery is recorded as skipped.',
  })
  @ApiCreatedResponse({ type: SilenceDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'VALIDATION_FAILED' })
  async create(
    @CurrentTenant() tenant: TenantContext,
    @Query() _q: TenantQueryDto,
    @Body() body: CreateSilenceDto,
  ): Promise<SilenceDto> {
    const row = await this.silences.create(tenant.id, {
      service: body.service,
      reason: body.reason,
      startsAt: body.starts_at,
      expiresAt: body.expires_at,
      durationMinutes: body.duration_minutes,
    });
    return toSilenceDto(tenant.id, row);
  }

  @Get()
  @ApiOperation({ summary: "The tenant's silences, newest first (active=true: only those in force)" })
  @ApiOkResponse({ type: SilenceListDto })
  async list(@CurrentTenant() tenant: TenantContext, @Query() q: SilencesQueryDto): Promise<SilenceListDto> {
    const after = q.cursor ? decodeCursor(q.cursor, isSeqCursor) : undefined;
    const rows = await this.silences.list(
      tenant.id,
      { service: q.service, activeOnly: q.active === true },
      q.limit + 1,
      after?.seq,
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((s) => toSilenceDto(tenant.id, s)),
      nextCursor: rows.length > q.limit && last ? encodeCursor({ seq: last.seq }) : null,
    };
  }

  @Delete(':id')
  @ApiOperation({ summary: 'End a silence now (it stays listed, inactive)' })
  @ApiOkResponse({ type: SilenceDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'SILENCE_NOT_FOUND' })
  async end(
    @CurrentTenant() tenant: TenantContext,
    @Param() p: SilenceIdParamDto,
    @Query() _q: TenantQueryDto,
  ): Promise<SilenceDto> {
    return toSilenceDto(tenant.id, await this.silences.end(tenant.id, p.id));
  }
}
