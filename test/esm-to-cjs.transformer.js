// Jest on Node 20 cannot require() the ESM-only @nestjs/* 12 packages (Node itself can, via require(esm)).
// This transformer compiles those files to CommonJS for the test runtime only; production runs them as ESM.
const ts = require('typescript');
const crypto = require('crypto');

const VERSION = '3';

module.exports = {
  getCacheKey(source, path) {
    return crypto.createHash('sha1').update(VERSION).update(path).update(source).digest('hex');
  },
  process(source, path) {
    const patched = source
      // CommonJS already has a `require`; redeclaring it is a syntax error there.
      .replace(/^\s*const require = createRequire\(import\.meta\.url\);?\s*$/gm, '')
      .replace(/import\.meta\.url/g, "require('url').pathToFileURL(__filename).href")
      .replace(/import\.meta\.resolve\(/g, 'require.resolve(')
      .replace(/import\.meta\.dirname/g, '__dirname')
      .replace(/import\.meta\.filename/g, '__filename');
    const out = ts.transpileModule(patched, {
      fileName: path,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        allowJs: true,
        esModuleInterop: true,
        sourceMap: false,
      },
    });
    return { code: out.outputText };
  },
};
