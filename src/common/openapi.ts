import type { OpenAPIObject } from '@nestjs/swagger';

type MediaTypes = Record<string, { schema: Record<string, unknown>; example?: unknown }>;

/** Component schemas written as plain JSON Schema (what a DTO class cannot say, e.g. open objects). */
const extraSchemas = new Map<string, Record<string, unknown>>();

/**
 * Registers a named component schema given as plain JSON Schema, for shapes a decorated class
 * cannot express (`additionalProperties: true` on the object itself); returns its `$ref`.
 */
export function defineOpenApiSchema(name: string, schema: Record<string, unknown>): { $ref: string } {
  extraSchemas.set(name, schema);
  return { $ref: `#/components/schemas/${name}` };
}

/** Request bodies whose schema differs by content type, by operationId (`<Controller>_<method>`). */
const requestContents = new Map<string, { content: MediaTypes; description?: string }>();

/**
 * Declares a request body with one schema per content type (e.g. JSON events and NDJSON text on
 * `POST /ingest`, JSON and protobuf on the Loki push), which `@ApiBody` cannot express: it gives every
 * `@ApiConsumes` type the same schema. Applied to the document by {@link finishOpenApiDocument}.
 */
export function ApiRequestContent(content: MediaTypes, description?: string): MethodDecorator {
  return (target, key) => {
    requestContents.set(`${target.constructor.name}_${String(key)}`, { content, description });
  };
}

/**
 * Completes what the Nest document builder cannot say with decorators, in place:
 * - per-content-type request bodies registered with {@link ApiRequestContent}, and the schemas of
 *   {@link defineOpenApiSchema};
 * - `security: []` on operations without a requirement (the `@Public()` routes), so a linter and a
 *   client generator see that they need no key rather than an omission.
 */
export function finishOpenApiDocument(doc: OpenAPIObject): OpenAPIObject {
  doc.components ??= {};
  doc.components.schemas = { ...doc.components.schemas, ...Object.fromEntries(extraSchemas) };
  for (const ops of Object.values(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const op = ops[method];
      if (!op) continue;
      op.security ??= [];
      const body = op.operationId ? requestContents.get(op.operationId) : undefined;
      if (body) op.requestBody = { required: true, content: body.content, ...(body.description ? { description: body.description } : {}) };
    }
  }
  return doc;
}
