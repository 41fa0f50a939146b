import { Controller, HttpStatus, Post, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawBodyRequest } from '../../../common/body-parser.middleware';
import { AppException } from '../../../common/errors/app.exception';
import { ErrorCode } from '../../../common/errors/error-code';
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
    summary: 'Loki-compatible push for log shippers (Promtail, Alloy, Vector, Fluent Bit, pino-loki, winston-loki)',
    description:
      "Loki's JSON or protobuf body, with Content-Encoding snappy, gzip or deflate. Lines may be JSON, logfmt, web-server " +
      'access logs (nginx, Apache) or plain text; each is read into an event (service, time, duration, status, bytes, ' +
      'method, path when the line has them), scored and stored like POST /ingest. Labels name the service when the line ' +
      'does not. The API key may also come as the basic-auth password, as Promtail sends it. Streams and entries are ' +
      "checked one by one as Loki does: 204 when all were stored, else 400 whose message lists the refused ones in Loki's " +
      'wording (the others are stored). Over-long lines are truncated and flagged, not refused.',
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
    "Loki's push body (JSON, or protobuf + snappy); Content-Encoding snappy, gzip or deflate is accepted",
  )
  @ApiResponse({ status: 204, description: 'All entries stored' })
  @ApiResponse({
    status: 400,
    type: ErrorResponseDto,
    description:
      "Some or all entries refused (the others are stored): VALIDATION_FAILED, `message` in Loki's wording, one `details` item per " +
      'refused stream (`streams[i]`) or entry (`streams[i].values[j]`); or an unreadable body (INVALID_BODY)',
  })
  @ApiResponse({ status: 413, type: ErrorResponseDto, description: 'Over INGEST_MAX_BYTES (compressed or decompressed) or INGEST_MAX_ITEMS' })
  @ApiResponse({ status: 415, type: ErrorResponseDto, description: 'UNSUPPORTED_MEDIA_TYPE (Content-Type or Content-Encoding)' })
  async push(
    @CurrentTenant() tenant: TenantContext,
    @Req() req: RawBodyRequest,
    @Res() res: Response,
  ): Promise<void> {
    const streams = this.intake.decode(String(req.headers['content-type'] ?? ''), String(req.headers['content-encoding'] ?? ''), req.body, req.rawBody);
    const result = await this.intake.push(tenant.id, streams);
    if (result.rejected) throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, result.message, result.details);
    res.status(204).end();
  }
}
