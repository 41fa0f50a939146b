import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiExtraModels, ApiHeader, ApiOperation, ApiResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawBodyRequest } from '../../common/body-parser.middleware';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { ApiRequestContent } from '../../common/openapi';
import { ApiTenantScoped, CurrentTenant } from '../tenancy/current-tenant.decorator';
import { TenantContext } from '../tenancy/tenant-registry.service';
import { INGEST_EVENT_SCHEMA, IngestEnvelopeDto } from './dto/ingest.dto';
import { IngestionService } from './ingestion.service';

// The example is sent as is by Swagger UI's "Try it out": stamped at start-up so it is recent.
const EXAMPLE_EVENT = {
  timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  service: 'seo-optimizer',
  http: { request: { method: 'GET', path: '/api/pages' }, response: { status_code: 200, bytes: 5123 } },
  performance: { duration_ms: 1680 },
  seo_context: { generation_strategy: 'LLM_RAG_v2' },
};

@ApiTags('ingestion')
@ApiTenantScoped()
@ApiExtraModels(IngestEnvelopeDto, ErrorResponseDto)
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
  @ApiRequestContent(
    {
      'application/json': {
        schema: { oneOf: [INGEST_EVENT_SCHEMA, { type: 'array', items: INGEST_EVENT_SCHEMA }] },
        example: [EXAMPLE_EVENT],
      },
      'application/x-ndjson': {
        schema: { type: 'string', description: 'One event object (IngestEvent) per line' },
        example: JSON.stringify(EXAMPLE_EVENT) + '\n',
      },
    },
    'One event, a JSON array of events, or NDJSON (at most INGEST_MAX_ITEMS items, INGEST_MAX_BYTES bytes)',
  )
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Retries with the same key store nothing twice' })
  @ApiResponse({ status: 200, type: IngestEnvelopeDto, description: 'All accepted' })
  @ApiResponse({ status: 207, type: IngestEnvelopeDto, description: 'Some rejected' })
  @ApiResponse({
    status: 400,
    description: 'None accepted (the envelope), or a body that is not JSON/NDJSON (INVALID_BODY in the error shape)',
    schema: { oneOf: [{ $ref: getSchemaPath(IngestEnvelopeDto) }, { $ref: getSchemaPath(ErrorResponseDto) }] },
  })
  @ApiResponse({ status: 413, type: ErrorResponseDto, description: 'Over INGEST_MAX_BYTES or INGEST_MAX_ITEMS' })
  @ApiResponse({ status: 415, type: ErrorResponseDto, description: 'UNSUPPORTED_MEDIA_TYPE: neither JSON nor NDJSON' })
  async ingest(
    @CurrentTenant() tenant: TenantContext,
    @Req() req: RawBodyRequest,
    @Res({ passthrough: true }) res: Response,
  ): Promise<IngestEnvelopeDto> {
    // Read here rather than with @Headers(), which the OpenAPI document would list as a required header.
    const idempotencyKey = req.header('idempotency-key');
    const items = this.ingestion.readItems(String(req.headers['content-type'] ?? ''), req.body, req.rawBody);
    const envelope = await this.ingestion.ingest(tenant.id, items, idempotencyKey);
    res.status(envelope.rejected === 0 ? 200 : envelope.accepted > 0 ? 207 : 400);
    return envelope;
  }
}
