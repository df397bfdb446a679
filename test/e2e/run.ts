// `npm run e2e [-- --nodes 1|3] [vitest arguments]`: the real-cluster suite. --nodes picks the cluster's shape
// (vitest would take an unknown flag for its own), handed to the suites as TW_E2E_NODES: 1 (the default, what CI
// runs) is the one-node dev cluster of control-plane.test.ts and the other files; 3 is three-nodes.test.ts (with the
// files named, if any).
// Before the suites, the air-gapped bundle the nodes install from is built, or brought up to date with this tree
// (build-bundle rebuilds only what changed, so the cluster runs this commit's images; a current one is checked in
// about 15 s). Measured on 2 shared cores: a cold build 34 min, our two images alone about 3 min.
// First: an old Node.js stops here with the fix, not minutes later when a suite runs the program (the nodes get
// this Node.js too).
import '../../bin/check-node.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { buildBundle } from '../../scripts/build-bundle.mjs';
import { MANIFEST_FILE } from '../../scripts/lib/bundle/manifest.js';
import { processIO } from '../../scripts/lib/cli.js';
import { repoRoot } from '../harness/paths.js';
import { bundleDir } from './bundle.js';

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

async function main(argv: readonly string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    process.stderr.write(`${e instanceof z.ZodError ? (e.issues[0]?.message ?? e.message) : String(e)}\n`);
    return 2;
  }
  const files = args.nodes === '3' ? ['test/e2e/three-nodes.test.ts'] : [];
  // Without root neither the bundle (rootful buildah) nor the nodes can be made: the suites then say they did not run.
  if (process.getuid?.() === 0) {
    process.stderr.write(
      existsSync(join(bundleDir, MANIFEST_FILE))
        ? `e2e: bringing the bundle ${bundleDir} up to date with this tree\n`
        : `e2e: building the air-gapped bundle into ${bundleDir}, once for this machine (about 35 min on 2 cores)\n`,
    );
    const io = processIO(pathToFileURL(join(repoRoot, 'scripts', 'build-bundle.mts')).href);
    if ((await buildBundle(['--out', bundleDir], io)) !== 0) {
      process.stderr.write('e2e: the bundle build failed (its log is above); no suite ran\n');
      return 1;
    }
  }
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
