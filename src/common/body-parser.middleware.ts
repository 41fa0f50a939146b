import { HttpStatus, Inject, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { createGunzip, inflate, inflateRaw } from 'zlib';
import { promisify } from 'util';
import { Readable, Transform } from 'stream';
import { AppConfig } from '../config/app-config';
import { AppException } from './errors/app.exception';
import { ErrorCode } from './errors/error-code';
import { jsonTextDepthExceeds, MAX_JSON_DEPTH } from './validation/storable';

/** Loki's push route: Content-Encoding snappy there is left to the handler (Loki's semantics). */
const LOKI_PUSH = '/loki/api/v1/push';

const inflateZlib = promisify(inflate);
const inflateDeflateRaw = promisify(inflateRaw);

/**
 * Undoes Content-Encoding deflate, zlib-wrapped (RFC 9110) or raw (what Loki's Go reader takes),
 * stopping at `limit` bytes of output.
 */
async function inflateLimited(raw: Buffer, limit: number): Promise<Buffer> {
  const zlibWrapped = raw.length >= 2 && (raw[0] & 0x0f) === 8 && ((raw[0] << 8) | raw[1]) % 31 === 0;
  try {
    return await (zlibWrapped ? inflateZlib : inflateDeflateRaw)(raw, { maxOutputLength: limit });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit);
    throw e;
  }
}

/** Routes that take bulk log bodies and so get INGEST_MAX_BYTES instead of the small default. */
const BULK_ROUTES = new Set(['/ingest', '/loki/api/v1/push', '/replay']);
/** The only route whose JSON body may be an array (of events); every other one takes one object. */
const ARRAY_ROUTES = new Set(['/ingest']);
/**
 * Deepest JSON body we parse into objects: an event's metadata may nest 64 levels (MAX_JSON_DEPTH)
 * inside the array and the event; nothing else comes close. Deeper bodies would only reach
 * recursive code (class-transformer, PostgreSQL's jsonb parser).
 */
const MAX_BODY_DEPTH = MAX_JSON_DEPTH + 8;

function invalidBody(reason: string): AppException {
  return new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, `The request body ${reason}`, [{ field: 'body', reason }]);
}

/** The first byte that is not JSON whitespace, or -1. */
function firstSignificantByte(raw: Buffer): number {
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0xef && b !== 0xbb && b !== 0xbf) return b;
  }
  return -1;
}

export type RawBodyRequest = Request & { rawBody?: Buffer };

function tooLarge(limit: number): AppException {
  return new AppException(
    HttpStatus.PAYLOAD_TOO_LARGE,
    ErrorCode.PAYLOAD_TOO_LARGE,
    `Request body exceeds the limit of ${limit} bytes`,
  );
}

/**
 * Reads a body into memory, failing as soon as it passes `limit` bytes. On failure the request is
 * left draining (not destroyed), so the client still reads our 413 instead of a dropped connection,
 * also for chunked bodies that declare no length.
 */
function readLimited(req: Readable, limit: number, decoder?: Transform): Promise<Buffer> {
  const source: Readable = decoder ?? req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      if (decoder) {
        req.unpipe(decoder);
        decoder.destroy();
      }
      // Discard the rest of the body: the response can go out while the client is still sending.
      req.resume();
      reject(tooLarge(limit));
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      if (decoder) req.unpipe(decoder);
      req.resume();
      reject(e);
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
  });
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
    let decoder: Transform | undefined;
    const passThrough = encoding === 'snappy' && path === LOKI_PUSH;
    if (encoding === 'gzip') decoder = req.pipe(createGunzip());
    else if (encoding !== 'identity' && encoding !== 'deflate' && !passThrough) {
      throw new AppException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.UNSUPPORTED_MEDIA_TYPE, `Content-Encoding ${encoding} is not supported`);
    }
    let raw: Buffer;
    try {
      raw = await readLimited(req, limit, decoder);
      if (encoding === 'deflate') raw = await inflateLimited(raw, limit);
    } catch (e) {
      if (e instanceof AppException) throw e;
      throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, `Cannot read the request body: ${(e as Error).message}`);
    }
    req.rawBody = raw;
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const isJson = type === '' || type === 'application/json' || type.endsWith('+json');
    if (!isJson || raw.length === 0 || passThrough) return next();
    const objectOnly = !ARRAY_ROUTES.has(path);
    // An array where one object is expected is refused before it is even parsed: validated per
    // element it would cost time and memory in proportion to its (decompressed) length.
    if (objectOnly && firstSignificantByte(raw) === 0x5b) throw invalidBody('must be a JSON object, not an array');
    if (jsonTextDepthExceeds(raw, MAX_BODY_DEPTH)) throw invalidBody(`is nested deeper than ${MAX_BODY_DEPTH} levels`);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw new AppException(HttpStatus.BAD_REQUEST, ErrorCode.INVALID_BODY, `Body is not valid JSON: ${(e as Error).message}`);
    }
    if (objectOnly && (typeof body !== 'object' || body === null || Array.isArray(body))) throw invalidBody('must be a JSON object');
    req.body = body;
    next();
  }
}
