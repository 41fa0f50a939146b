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
});
