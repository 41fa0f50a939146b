import { Controller, Headers, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawBodyRequest } from '../../common/body-parser.middleware';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { IngestEnvelopeDto } from './dto/ingest.dto';
import { IngestionService } from './ingestion.service';

const EXAMPLE_EVENT = {
  timestamp: '2025-11-14T00:00:00Z',
  service: 'seo-optimizer',
  http: { request: { method: 'GET', path: '/api/pages' }, response: { status_code: 200, bytes: 5123 } },
  performance: { duration_ms: 1680 },
  seo_context: { generation_strategy: 'LLM_RAG_v2' },
};

@ApiTags('ingestion')
@ApiTenantScoped()
@Controller()
export class IngestionController {
  constructor(private readonly ingestion: IngestionService) {}

  @Post('ingest')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Push log events: one object, a JSON array, or NDJSON; each item validated, scored and stored',
    description:
      '200 when every item was accepted, 207 when some were rejected, 400 when none was — always with the envelope. ' +
      "An item's `id` or the request's `Idempotency-Key` makes a retry store nothing twice.",
  })
  @ApiConsumes('application/json', 'application/x-ndjson')
  @ApiBody({ schema: { oneOf: [{ type: 'object' }, { type: 'array', items: { type: 'object' } }], example: [EXAMPLE_EVENT] } })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Retries with the same key store nothing twice' })
  @ApiResponse({ status: 200, type: IngestEnvelopeDto, description: 'All accepted' })
  @ApiResponse({ status: 207, type: IngestEnvelopeDto, description: 'Some rejected' })
  @ApiResponse({ status: 400, type: IngestEnvelopeDto, description: 'None accepted (or INVALID_BODY in the error shape)' })
  @ApiResponse({ status: 413, type: ErrorResponseDto, description: 'Over INGEST_MAX_BYTES or INGEST_MAX_ITEMS' })
  async ingest(
    @CurrentTenant() tenant: TenantContext,
    @Req() req: RawBodyRequest,
    @Res({ passthrough: true }) res: Response,
    @Headers('idempotency-key') idempotencyKey?: string,
  ): Promise<IngestEnvelopeDto> {
    const items = this.ingestion.readItems(String(req.headers['content-type'] ?? ''), req.body, req.rawBody);
    const envelope = await this.ingestion.ingest(tenant.id, items, idempotencyKey);
    res.status(envelope.rejected === 0 ? 200 : envelope.accepted > 0 ? 207 : 400);
    return envelope;
  }
}
