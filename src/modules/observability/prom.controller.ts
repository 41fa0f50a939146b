import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import { timingSafeEqual, createHash } from 'crypto';
import type { Request, Response } from 'express';
import { AppConfig } from '../../config/app-config';
import { AppException } from '../../common/errors/app.exception';
import { ErrorCode } from '../../common/errors/error-code';
import { Public } from '../tenancy/public.decorator';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Prometheus exposition at /prom: public, but behind `Authorization: Bearer $METRICS_TOKEN` when set. */
@ApiExcludeController()
@Controller()
export class PromController extends PrometheusController {
  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    super();
  }

  @Public()
  @Get()
  override async index(@Res({ passthrough: true }) response: Response, @Req() req?: Request): Promise<string> {
    const token = this.config.metricsToken;
    if (token) {
      const m = /^Bearer\s+(.+)$/i.exec(req?.headers.authorization ?? '');
      if (!m || !timingSafeEqual(digest(m[1].trim()), digest(token))) {
        throw new AppException(401, ErrorCode.METRICS_TOKEN_REQUIRED, 'A valid metrics token is required (Authorization: Bearer)', undefined, {
          'WWW-Authenticate': 'Bearer',
        });
      }
    }
    return super.index(response);
  }
}
