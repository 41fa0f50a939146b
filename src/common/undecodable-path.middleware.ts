import { HttpStatus } from '@nestjs/common';
import { randomUUID } from 'crypto';
import type { NextFunction, Request, Response } from 'express';
import { ErrorBody, ErrorCode } from './errors/error-code';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Express middleware mounted before every route: a path whose percent-encoding does not decode
 * (`/detections/%FF`) makes the router fail before any Nest middleware or filter runs, so it is
 * answered here, in the one error shape, naming the field and with a request id.
 */
export function rejectUndecodablePath(req: Request, res: Response, next: NextFunction): void {
  const path = (req.url ?? '').split('?')[0];
  if (!path.includes('%')) return next();
  try {
    decodeURIComponent(path);
    return next();
  } catch {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const reason = 'is not valid percent-encoded UTF-8';
    const body: ErrorBody = {
      statusCode: HttpStatus.BAD_REQUEST,
      code: ErrorCode.VALIDATION_FAILED,
      error: 'Bad Request',
      message: `The request path ${reason}`,
      details: [{ field: 'path', reason }],
      requestId,
    };
    res.setHeader('X-Request-Id', requestId);
    res.status(HttpStatus.BAD_REQUEST).json(body);
  }
}
