// Lets a child process run the service from its TypeScript sources (`node -r test/support/ts-register.js
// src/main.ts`), transpiled file by file with the project's compiler settings and no type check, so
// process-level tests (signals, exit codes) need no build. Type checking is `npm run typecheck`'s job.
const { readFileSync } = require('fs');
const ts = require('typescript');

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  emitDecoratorMetadata: true,
  experimentalDecorators: true,
  esModuleInterop: true,
  inlineSourceMap: true,
};

require.extensions['.ts'] = function compileTs(module, filename) {
  const { outputText } = ts.transpileModule(readFileSync(filename, 'utf8'), { fileName: filename, compilerOptions });
  module._compile(outputText, filename);
};
