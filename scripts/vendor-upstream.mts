// Copies the upstream manifests the tree deploys (Flannel, local-path-provisioner, KubeRay's operator base, Argo CD's
// install.yaml) into the tree at the versions pinned in versions.yaml, from each project's Go module at that tag.
// `--check` changes nothing and fails when the tree differs (test/gitops runs it). Why vendored: scripts/lib/upstream.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { goModule } from './lib/go-modules.js';
import type { ScriptIO } from './lib/run.js';
import { filesUnder, SOURCE_FILE, sourceText, upstreams, type Upstream } from './lib/upstream.js';
import { loadVersions } from './lib/versions.js';

const options = {
  check: { type: 'boolean' },
} as const;

const spec = {
  name: 'vendor-upstream',
  options,
  readOnly: true,
  usage: `
Usage: node --import tsx scripts/vendor-upstream.mts [--check]

Copies the upstream manifests pinned in versions.yaml into the tree (infrastructure/*/upstream/,
argocd/install/upstream/), each from its project's Go module at the pinned tag (needs Go and the
Go module proxy). Run it after changing a pin, then commit the result.

  --check     change nothing; exit 1 and list the differences if the tree is not what the pins give
  -h, --help  this text

Exit codes: 0 up to date (or written), 1 differences found with --check, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

/** The files an upstream should have in the tree: relative path -> content. */
async function expectedFiles(u: Upstream): Promise<Map<string, Buffer>> {
  const moduleDir = await goModule(u.module, u.version);
  const files = new Map<string, Buffer>();
  for (const f of filesUnder(moduleDir, u.paths)) files.set(f, await fs.readFile(join(moduleDir, f)));
  files.set(SOURCE_FILE, Buffer.from(sourceText(u, moduleDir)));
  return files;
}

function presentFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** Differences between the tree and what the pins give, one line each. */
function differences(dir: string, into: string, want: Map<string, Buffer>): string[] {
  const out: string[] = [];
  for (const [f, content] of want) {
    const abs = join(dir, f);
    if (!existsSync(abs)) out.push(`${into}/${f}: missing`);
    else if (!readFileSync(abs).equals(content)) out.push(`${into}/${f}: differs from upstream`);
  }
  for (const f of presentFiles(dir)) if (!want.has(f)) out.push(`${into}/${f}: not upstream (remove it)`);
  return out;
}

export function vendorUpstream(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { log, out }) => {
    const versions = loadVersions(io.repoRoot);
    let stale = 0;
    for (const u of upstreams(versions)) {
      const dir = join(io.repoRoot, u.into);
      const want = await expectedFiles(u);
      const diff = differences(dir, u.into, want);
      if (diff.length === 0) {
        log.info(`${u.name}: ${u.into} is ${u.module}@${u.version}`);
        continue;
      }
      if (flags.check) {
        stale += diff.length;
        for (const d of diff) out(d);
        continue;
      }
      await fs.rm(dir, { recursive: true, force: true });
      for (const [f, content] of want) {
        await fs.mkdir(dirname(join(dir, f)), { recursive: true });
        await fs.writeFile(join(dir, f), content);
      }
      log.info(`${u.name}: wrote ${want.size} files from ${u.module}@${u.version} into ${u.into}`);
    }
    if (stale > 0)
      out(`${stale} difference(s): run node --import tsx scripts/vendor-upstream.mts and commit the result`);
    return stale > 0 ? 1 : 0;
  });
}

await main(import.meta.url, vendorUpstream);
