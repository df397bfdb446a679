import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

/** Repository root, without a trailing slash (this file lives in test/harness/). */
export const repoRoot: string = resolve(fileURLToPath(new URL('../../', import.meta.url)));

export { cacheRoot } from '../../scripts/lib/bundle/go-builds.js';

const HarnessVersions = z.object({
  ray: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a PyPI release like 2.52.0'),
  megatronCore: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a PyPI release like 0.16.1'),
  torch: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a PyPI release like 2.15.0'),
  // A Go module version of github.com/seaweedfs/seaweedfs (the proxy only has pseudo-versions).
  seaweedfs: z.string().regex(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a Go module version like v0.0.0-2026…'),
  // github.com/prometheus/pushgateway, built with `go install` (the same release as the in-cluster image).
  pushgateway: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected a release like v1.11.5'),
});
export type HarnessVersions = z.infer<typeof HarnessVersions>;

/** The pins the harness installs, read from versions.yaml (the only place versions live). */
export function harnessVersions(file: string = join(repoRoot, 'versions.yaml')): HarnessVersions {
  const parsed = HarnessVersions.safeParse(parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: key "${issue?.path.join('.') ?? '?'}": ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
