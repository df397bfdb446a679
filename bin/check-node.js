// Stops, with the fix, on a Node.js older than package.json's `engines` (one `>=X.Y.Z` bound; test/versions.test.ts
// keeps it that form). The launcher imports it first and `npm install` runs it as `preinstall`, so an old Node says
// what to do instead of failing later on an API it lacks. Plain JavaScript that any Node.js since 12 can run.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const bound = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(pkg.engines.node);
if (!bound) throw new Error(`package.json: engines.node "${pkg.engines.node}" is not of the form >=X.Y.Z`);
const need = bound.slice(1).map(Number);
const have = process.versions.node.split('.').map(Number);
const first = need.findIndex((n, i) => have[i] !== n);
if (first >= 0 && have[first] < need[first]) {
  process.stderr.write(
    [
      `tokenize-wiki needs Node.js ${pkg.engines.node} (package.json "engines"); this is Node.js ${process.versions.node} (${process.execPath}).`,
      `Put a Node.js ${need[0]} first on PATH, then run the command again. In a clone of the repository:`,
      `  export PATH="$(.ci/pinned-node):$PATH"   # the pinned version, installed from npm into ~/.cache/tokenize-wiki/ once`,
      `or install Node.js ${need[0]} LTS from https://nodejs.org/ (or: nvm install ${need[0]}).`,
      '',
    ].join('\n'),
  );
  process.exit(2);
}
