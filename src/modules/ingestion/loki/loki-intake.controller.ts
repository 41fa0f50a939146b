import { Controller, Post, Req, Res } from '@nestjs/common';
import { ApiConsumes, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawBodyRequest } from '../../../common/body-parser.middleware';
import { ErrorResponseDto } from '../../../common/errors/error-response.dto';
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
  @ApiConsumes('application/json', 'application/x-protobuf')
  @ApiResponse({ status: 204, description: 'All lines accepted' })
  @ApiResponse({ status: 400, description: 'Some or all lines rejected (text message), or an unreadable body', type: ErrorResponseDto })
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
