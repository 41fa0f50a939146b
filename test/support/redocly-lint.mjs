// Lints an OpenAPI document with Redocly's maintained linter (@redocly/openapi-core, the engine of
// `redocly lint`): its "recommended" ruleset, with examples that do not match their schemas raised
// to errors. A separate process because the package is ESM only.
// Usage: node test/support/redocly-lint.mjs <openapi.json>  → prints the problems as a JSON array.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { createConfig, lintFromString } from '@redocly/openapi-core';

const file = process.argv[2];
const config = await createConfig({
  extends: ['recommended'],
  rules: {
    'no-invalid-schema-examples': 'error',
    'no-invalid-media-type-examples': 'error',
  },
});
const problems = await lintFromString({ source: readFileSync(file, 'utf8'), absoluteRef: pathToFileURL(file).href, config });
process.stdout.write(
  JSON.stringify(
    problems.map((p) => ({ ruleId: p.ruleId, severity: p.severity, message: p.message, pointer: p.location?.[0]?.pointer })),
  ),
);
