// Go modules through the Go module proxy: the one registry that serves upstream projects' files (manifests, CRDs,
// sources) at a release tag. Used by the vendoring script, the bundle build and the tests.
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { z } from 'zod';

/**
 * h1 checksums for module versions that sum.golang.org does not list (it answers 404 for local-path-provisioner
 * v0.0.37), so `go` cannot verify them itself; we verify against these. Bumping such a pin means checking the new zip
 * and adding its sum here.
 */
const UNLISTED_SUMS: Record<string, string> = {
  'github.com/rancher/local-path-provisioner@v0.0.37': 'h1:xRGhYXH31HtfbYWA9Qe8zAqCmHuw4dDRZNrDlWe0OQg=',
};

const GoModDownload = z.object({ Dir: z.string().optional(), Sum: z.string().optional(), Error: z.string().optional() });
const moduleDirs = new Map<string, Promise<string>>();

/** `go mod download` one module version (once per process) and return its read-only directory in the module cache. */
export function goModule(module: string, version: string): Promise<string> {
  const key = `${module}@${version}`;
  let dir = moduleDirs.get(key);
  if (!dir) {
    dir = downloadModule(module, version);
    moduleDirs.set(key, dir);
    dir.catch(() => moduleDirs.delete(key));
  }
  return dir;
}

async function downloadModule(module: string, version: string): Promise<string> {
  const key = `${module}@${version}`;
  const pinnedSum = UNLISTED_SUMS[key];
  const env: NodeJS.ProcessEnv = { ...process.env, GOFLAGS: '-mod=mod', GOWORK: 'off' };
  if (pinnedSum) env.GONOSUMDB = module;
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile('go', ['mod', 'download', '-json', key], { cwd: tmpdir(), env, maxBuffer: 16 << 20 }, (err, out, errOut) => {
      if (err && typeof err.code !== 'number') reject(new Error(`go mod download ${key}: ${err.message} (is Go installed?)`));
      else resolve({ code: err ? Number(err.code) : 0, stdout: out, stderr: errOut });
    });
  });
  let info: z.infer<typeof GoModDownload> = {};
  try {
    info = GoModDownload.parse(JSON.parse(stdout));
  } catch {
    // reported below with go's own stderr
  }
  if (code !== 0 || !info.Dir) throw new Error(`go mod download ${key} failed: ${info.Error ?? stderr.trim()}`);
  if (pinnedSum && info.Sum !== pinnedSum) throw new Error(`go mod download ${key}: checksum ${info.Sum ?? '?'} != pinned ${pinnedSum}`);
  return info.Dir;
}
