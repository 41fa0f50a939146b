import { Controller, Post, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawBodyRequest } from '../../../common/body-parser.middleware';
import { ErrorResponseDto } from '../../../common/errors/error-response.dto';
import { ApiRequestContent } from '../../../common/openapi';
import { ApiTenantScoped, CurrentTenant } from '../../tenancy/current-tenant.decorator';
import { TenantContext } from '../../tenancy/tenant-registry.service';
import { LokiIntakeService } from './loki-intake.service';

@ApiTags('ingestion')
@ApiTenantScoped()
@Controller('loki/api/v1')
export class LokiIntakeController {
  constructor(private readonly intake: LokiIntakeService) {}

  @Post('push')
  @ApiOperation({
    summary: 'Loki-compatible push for log shippers (Promtail, Alloy, Loki clients)',
    description:
      "Loki's JSON or protobuf + snappy body. Each JSON line is scored and stored like POST /ingest (labels fill in " +
      '`service`). The API key may also come as the basic-auth password, as Promtail sends it. 204 when every line was ' +
      'accepted; 400 with a message naming the rejected lines (the others are stored).',
  })
  @ApiRequestContent(
    {
      'application/json': {
        schema: {
          type: 'object',
          required: ['streams'],
          properties: {
            streams: {
              type: 'array',
              items: {
                type: 'object',
                required: ['stream', 'values'],
                properties: {
                  stream: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels; `service` names the service' },
                  values: {
                    type: 'array',
                    description: '[timestamp in Unix nanoseconds as a decimal string, log line] (an optional third item: structured metadata)',
                    items: { type: 'array', minItems: 2, maxItems: 3, items: { oneOf: [{ type: 'string' }, { type: 'object', additionalProperties: { type: 'string' } }] } },
                  },
                },
              },
            },
          },
        },
        example: {
          streams: [
            {
              stream: { service: 'seo-optimizer', env: 'prod' },
              values: [[`${Date.now()}000000`, '{"duration_ms":180,"status_code":200,"bytes":5123}']],
            },
          ],
        },
      },
      'application/x-protobuf': {
        schema: { type: 'string', format: 'binary', description: "Loki's logproto.PushRequest, snappy block-compressed (as Promtail sends it)" },
      },
    },
    "Loki's push body (JSON, or protobuf + snappy); Content-Encoding gzip is accepted",
  )
  @ApiResponse({ status: 204, description: 'All lines accepted' })
  @ApiResponse({
    status: 400,
    description: 'Some or all lines rejected (a text message naming them; the others are stored), or an unreadable body (error shape)',
    content: {
      'text/plain': { schema: { type: 'string' } },
      'application/json': { schema: { $ref: '#/components/schemas/ErrorResponseDto' } },
    },
  })
  @ApiResponse({ status: 413, type: ErrorResponseDto, description: 'Over INGEST_MAX_BYTES or INGEST_MAX_ITEMS' })
  @ApiResponse({ status: 415, type: ErrorResponseDto, description: 'UNSUPPORTED_MEDIA_TYPE' })
  async push(
    @CurrentTenant() tenant: TenantContext,
    @Req() req: RawBodyRequest,
    @Res() res: Response,
  ): Promise<void> {
    const streams = this.intake.decode(String(req.headers['content-type'] ?? ''), req.body, req.rawBody);
    const result = await this.intake.push(tenant.id, streams);
    if (!result.rejected) {
      res.status(204).end();
      return;
    }
    res.status(400).type('text/plain').send(result.message + '\n');
  }
}
