// Go modules through the Go module proxy: the one registry that serves upstream projects' files (manifests, CRDs,
// sources) at a release tag. Used by the vendoring script, the bundle build and the tests.
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import type { Host } from './host.js';

/**
 * h1 checksums for module versions that sum.golang.org does not list (it answers 404 for local-path-provisioner
 * v0.0.37), so `go` cannot verify them itself; we verify against these. Bumping such a pin means checking the new zip
 * and adding its sum here.
 */
const UNLISTED_SUMS: Record<string, string> = {
  'github.com/rancher/local-path-provisioner@v0.0.37': 'h1:xRGhYXH31HtfbYWA9Qe8zAqCmHuw4dDRZNrDlWe0OQg=',
};

const GoModDownload = z.object({
  Dir: z.string().optional(),
  Sum: z.string().optional(),
  Error: z.string().optional(),
});
const moduleDirs = new Map<string, Promise<string>>();

/**
 * `go mod download` one module version through the proxy (checked against `UNLISTED_SUMS` where the sum database
 * has no entry) and return its read-only directory in the module cache. `host` runs the command: a probe, since
 * filling the module cache changes nothing a dry run should show. The one implementation for scripts and tests.
 */
export async function goModDir(
  host: Pick<Host, 'probe'>,
  module: string,
  version: string,
  options: { toolchain?: string } = {},
): Promise<string> {
  const key = `${module}@${version}`;
  const pinnedSum = UNLISTED_SUMS[key];
  const env = [
    'GOFLAGS=-mod=mod',
    'GOWORK=off',
    ...(pinnedSum ? [`GONOSUMDB=${module}`] : []),
    ...(options.toolchain ? [`GOTOOLCHAIN=${options.toolchain}`] : []),
  ];
  const r = await host.probe(['env', ...env, 'go', 'mod', 'download', '-json', key]);
  const info = GoModDownload.safeParse(safeJson(r.stdout));
  if (r.exitCode !== 0 || !info.success || !info.data.Dir) {
    throw new Error(
      `go mod download ${key} failed: ${(info.success && info.data.Error) || r.stderr.trim() || `exit ${r.exitCode} (is Go installed?)`}`,
    );
  }
  if (pinnedSum && info.data.Sum !== pinnedSum)
    throw new Error(`go mod download ${key}: checksum ${info.data.Sum ?? '?'} != pinned ${pinnedSum}`);
  return info.data.Dir;
}

/** `goModDir` on this machine, once per module version and process, without a time limit (a cold cache is slow). */
export function goModule(module: string, version: string): Promise<string> {
  const key = `${module}@${version}`;
  let dir = moduleDirs.get(key);
  if (!dir) {
    dir = goModDir(localProbe, module, version);
    moduleDirs.set(key, dir);
    dir.catch(() => moduleDirs.delete(key));
  }
  return dir;
}

const localProbe: Pick<Host, 'probe'> = {
  probe: (argv) =>
    new Promise((resolve) => {
      const [cmd = '', ...args] = argv;
      execFile(cmd, args, { cwd: tmpdir(), maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
        resolve({ exitCode, stdout, stderr: stderr || (err && typeof err.code !== 'number' ? err.message : '') });
      });
    }),
};

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
