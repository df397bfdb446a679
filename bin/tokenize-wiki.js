#!/usr/bin/env node
// Thin launcher: the program is compiled to dist/ by `npm run build` (run by `npm install` via `prepare`).
// The Node.js check runs first; the program is imported only after it, so an old Node never parses it.
import './check-node.js';

const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
