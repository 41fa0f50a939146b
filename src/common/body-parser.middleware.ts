import { HttpStatus, Inject, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { createGunzip } from 'zlib';
import { Readable } from 'stream';
import { AppConfig } from '../config/app-config';
import { AppException } from './errors/app.exception';
import { ErrorCode } from './errors/error-code';

/** Routes that take bulk log bodies and so get INGEST_MAX_BYTES instead of the small default. */
const BULK_ROUTES = new Set(['/ingest', '/loki/api/v1/push', '/replay']);

export type RawBodyRequest = Request & { rawBody?: Buffer };

function tooLarge(limit: number): AppException {
  return new AppException(
    HttpStatus.PAYLOAD_TOO_LARGE,
    ErrorCode.PAYLOAD_TOO_LARGE,
    `Request body exceeds the limit of ${limit} bytes`,
  );
}

/** Reads a stream into memory, failing as soon as it passes `limit` bytes. */
async function readLimited(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy?.();
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Our body parser, in place of Nest's, so that every body error (too large, not JSON) is an
 * exception answered in the one error shape, and bulk routes get their own size limit (applied
 * after gzip decoding too). JSON bodies are parsed into `req.body`; other types (NDJSON, protobuf)
 * are left to the handler as `req.rawBody`.
 */
@Injectable()
export class BodyParserMiddleware implements NestMiddleware {
  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  async use(req: RawBodyRequest, _res: Response, next: NextFunction): Promise<void> {
    if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) return next();
    // originalUrl: inside a mounted middleware req.path is relative to the mount point.
    const path = (req.originalUrl ?? req.url).split('?')[0].replace(/\/+$/, '') || '/';
    const limit = BULK_ROUTES.has(path) ? this.config.ingestMaxBytes : this.config.requestBodyMaxBytes;
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);

    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    let source: Readable = req;
    if (encoding === 'gzip') source = req.pipe(createGunzip());
    else if (encoding !== 'identity') {
      throw new AppException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.UNSUPPORTED_MEDIA_TYPE, `Content-Encoding ${encoding} is not supported`);
    }
    let raw: Buffer;
    try {
      raw = await readLimited(source, limit);
    } catch (e) {
      if (e instanceof AppException) throw e;
      throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, `Cannot read the request body: ${(e as Error).message}`);
    }
    req.rawBody = raw;
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const isJson = type === '' || type === 'application/json' || type.endsWith('+json');
    if (!isJson || raw.length === 0) return next();
    try {
      req.body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, `Body is not valid JSON: ${(e as Error).message}`);
    }
    next();
  }
}
