import { execFileSync } from 'child_process';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import request from 'supertest';
import { ErrorCode } from '../src/common/errors/error-code';
import { startTestApp, TestApp } from './support/test-app';

describe('OpenAPI document (/docs-json)', () => {
  let sut: TestApp;
  let doc: {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, { enum?: string[]; properties?: Record<string, { $ref?: string; allOf?: { $ref: string }[] }> }> };
  };

  beforeAll(async () => {
    sut = await startTestApp();
    doc = (await request(sut.http).get('/docs-json').expect(200)).body;
  });
  afterAll(() => sut.close());

  it('should declare the error code as the enum the exception filter writes', () => {
    expect(doc.components.schemas.ErrorCode.enum).toEqual(Object.values(ErrorCode));
    expect(JSON.stringify(doc.components.schemas.ErrorResponseDto.properties!.code)).toContain('#/components/schemas/ErrorCode');
  });

  it('should answer an unknown route with a code of that enum', async () => {
    const res = await request(sut.http).get('/no-such-route').expect(404);
    expect(doc.components.schemas.ErrorCode.enum).toContain(res.body.code);
  });

  it('should give every property a type (no untyped numbers, no object without a shape)', () => {
    const untyped: string[] = [];
    const visit = (where: string, schema: Record<string, unknown>) => {
      if (schema.$ref || schema.oneOf || schema.anyOf || schema.allOf || schema.enum) return;
      if (!schema.type) untyped.push(where);
      if (schema.type === 'object' && !schema.properties && schema.additionalProperties === undefined) untyped.push(where);
      for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) visit(`${where}.${k}`, v);
      if (schema.items) visit(`${where}[]`, schema.items as Record<string, unknown>);
    };
    for (const [name, schema] of Object.entries(doc.components.schemas)) visit(name, schema as Record<string, unknown>);
    expect(untyped).toEqual([]);
    const feature = doc.components.schemas.ExplanationFeatureDto.properties as Record<string, { type?: string }>;
    expect([feature.value.type, feature.p50.type, feature.p99.type]).toEqual(['number', 'number', 'number']);
  });

  it('should declare only an optional Idempotency-Key header on POST /ingest, and request bodies per content type', () => {
    const ingest = doc.paths['/ingest'].post as unknown as { parameters: { name: string; in: string; required?: boolean }[]; requestBody: { content: Record<string, unknown> } };
    const headers = ingest.parameters.filter((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
    expect(headers).toEqual([expect.objectContaining({ name: 'Idempotency-Key', required: false })]);
    expect(Object.keys(ingest.requestBody.content).sort()).toEqual(['application/json', 'application/x-ndjson']);
    const push = doc.paths['/loki/api/v1/push'].post as unknown as { requestBody: { content: Record<string, unknown> } };
    expect(Object.keys(push.requestBody.content).sort()).toEqual(['application/json', 'application/x-protobuf']);
    const report = doc.paths['/replay/{id}/report'].get.responses as Record<string, { content?: Record<string, unknown> }>;
    expect(Object.keys(report['200'].content ?? {})).toEqual(['text/html']);
    expect(report['404']).toBeDefined();
  });

  it('should name a server and describe the bearer scheme as a plain key', () => {
    const full = doc as unknown as { servers: { url: string }[]; components: { securitySchemes: Record<string, Record<string, unknown>> } };
    expect(full.servers.length).toBeGreaterThan(0);
    expect(full.components.securitySchemes.bearer.bearerFormat).toBeUndefined();
  });

  it('should pass Redocly lint (recommended rules) with no errors', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'openapi-')), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const out = execFileSync(process.execPath, [join(__dirname, 'support/redocly-lint.mjs'), file], { encoding: 'utf8' });
    const problems = JSON.parse(out) as { ruleId: string; severity: string; message: string; pointer?: string }[];
    if (process.env.OPENAPI_LINT_VERBOSE) writeFileSync(process.env.OPENAPI_LINT_VERBOSE, JSON.stringify({ problems, doc }, null, 1));
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    // The one warning allowed: liveness and readiness have no 4xx answer to declare.
    const warnings = problems.filter((p) => p.severity !== 'error');
    expect(warnings.filter((p) => !(p.ruleId === 'operation-4xx-response' && /^#\/paths\/~1(healthz|readyz)\//.test(p.pointer ?? '')))).toEqual([]);
  });
});
