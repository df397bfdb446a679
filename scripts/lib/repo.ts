// Paths inside this repository that the scripts apply or read.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors.js';

export function clusterDir(repoRoot: string, cluster: string): string {
  return join(repoRoot, 'clusters', cluster);
}

/** Validates --cluster against the folders under clusters/ that hold `needs`. */
export function requireCluster(repoRoot: string, cluster: string | undefined, needs: string): string {
  const root = join(repoRoot, 'clusters');
  const known = existsSync(root)
    ? readdirSync(root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join(root, d.name, needs)))
        .map((d) => d.name)
        .sort()
    : [];
  if (!cluster) throw new UsageError(`--cluster is required (one of: ${known.join(', ') || 'none found'})`);
  if (!known.includes(cluster)) {
    throw new UsageError(`--cluster ${cluster}: no clusters/${cluster}/${needs} (known: ${known.join(', ') || 'none'})`);
  }
  return cluster;
}
