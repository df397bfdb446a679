// Pinned versions come only from versions.yaml at the repo root.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.js';

const Versions = z.looseObject({
  kubernetes: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH without a leading v'),
  flannel: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  containerd: z.string().regex(/^v2\.\d+\.\d+$/, 'expected a containerd v2 release, v2.MINOR.PATCH'),
  crictl: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  flannelCni: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  localPath: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  seaweedfs: z.string().regex(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a Go module version'),
  kuberay: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  ray: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  argocd: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  argocdGitopsEngine: z.string().regex(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a Go module version'),
});

export type Versions = z.infer<typeof Versions>;

export function loadVersions(repoRoot: string): Versions {
  const file = join(repoRoot, 'versions.yaml');
  let data: unknown;
  try {
    data = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const parsed = Versions.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${file}: key ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** "1.34.2" -> "v1.34", the path element of the pkgs.k8s.io repository. */
export function kubernetesMinor(version: string): string {
  const [major, minor] = version.split('.');
  return `v${major}.${minor}`;
}
