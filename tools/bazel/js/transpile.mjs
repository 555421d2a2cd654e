// ts_project's transpiler (//tools/bazel:js.bzl): each source on its own, like
// rules_ts's isolated transpilers. Type errors are the typecheck test's job.
//   node transpile.mjs TSC_JS TSCONFIG SRC OUT [SRC OUT]...
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [tscPath, configPath, ...pairs] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const ts = require(resolve(tscPath, "..", "typescript.js"));

const config = ts.readConfigFile(configPath, ts.sys.readFile);
if (config.error) {
  console.error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
  process.exit(1);
}
const converted = ts.convertCompilerOptionsFromJson(config.config.compilerOptions ?? {}, ".");
if (converted.errors.length > 0) {
  for (const error of converted.errors) console.error(ts.flattenDiagnosticMessageText(error.messageText, "\n"));
  process.exit(1);
}
const options = { ...converted.options, noEmit: false, declaration: false, sourceMap: false };

for (let i = 0; i < pairs.length; i += 2) {
  const [src, out] = [pairs[i], pairs[i + 1]];
  const result = ts.transpileModule(readFileSync(src, "utf8"), {
    compilerOptions: options,
    fileName: src,
    reportDiagnostics: true,
  });
  const errors = result.diagnostics ?? [];
  if (errors.length > 0) {
    for (const error of errors) console.error(`${src}: ${ts.flattenDiagnosticMessageText(error.messageText, "\n")}`);
    process.exit(1);
  }
  writeFileSync(out, result.outputText);
}
