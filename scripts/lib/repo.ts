// Paths inside this repository that the scripts apply or read.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors.js';

/**
 * Validates --cluster against the folders under `base` (clusters/, argocd/root/) that hold
 * `needs`; returns the cluster's folder.
 */
export function requireCluster(
  repoRoot: string,
  cluster: string | undefined,
  base: string,
  needs: string,
  flag = '--cluster',
): string {
  const root = join(repoRoot, base);
  const known = existsSync(root)
    ? readdirSync(root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join(root, d.name, needs)))
        .map((d) => d.name)
        .sort()
    : [];
  if (!cluster) throw new UsageError(`${flag} is required (one of: ${known.join(', ') || 'none found'})`);
  if (!known.includes(cluster)) {
    throw new UsageError(`${flag} ${cluster}: no ${base}/${cluster}/${needs} (known: ${known.join(', ') || 'none'})`);
  }
  return join(root, cluster);
}
