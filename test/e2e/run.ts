// `npm run e2e [-- --nodes 1|3] [vitest arguments]`: the real-cluster suite. --nodes picks the cluster's shape
// (vitest would take an unknown flag for its own), handed to the suites as TW_E2E_NODES: 1 (the default, what CI
// runs) is the one-node dev cluster of control-plane.test.ts and the other files; 3 is three-nodes.test.ts (with the
// files named, if any).
// First: an old Node.js stops here with the fix, not minutes later when a suite runs the program (the nodes get
// this Node.js too).
import '../../bin/check-node.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import { repoRoot } from '../harness/paths.js';

const Nodes = z.enum(['1', '3'], { error: 'npm run e2e: --nodes must be 1 or 3' });

function parse(argv: readonly string[]): { nodes: '1' | '3'; rest: string[] } {
  const rest: string[] = [];
  let nodes: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--nodes') nodes = argv[++i];
    else if (arg.startsWith('--nodes=')) nodes = arg.slice('--nodes='.length);
    else rest.push(arg);
  }
  return { nodes: Nodes.parse(nodes ?? '1'), rest };
}

function main(argv: readonly string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    process.stderr.write(`${e instanceof z.ZodError ? (e.issues[0]?.message ?? e.message) : String(e)}\n`);
    return Promise.resolve(2);
  }
  const files = args.nodes === '3' ? ['test/e2e/three-nodes.test.ts'] : [];
  const vitest = join(repoRoot, 'node_modules/vitest/vitest.mjs');
  const child = spawn(process.execPath, [vitest, 'run', '--config', 'vitest.e2e.config.ts', ...files, ...args.rest], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, TW_E2E_NODES: args.nodes },
  });
  // Ctrl-C reaches vitest through the terminal's process group: wait for its teardown. A SIGTERM is for vitest too.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}

process.exitCode = await main(process.argv.slice(2));
