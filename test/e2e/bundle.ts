// The bundle the e2e nodes install from, and whether it holds what a cluster needs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readNodeBundle } from '../../scripts/lib/bundle/node-bundle.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';

export const kubernetes = (parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string })
  .kubernetes;
export const bundleDir = process.env.TW_E2E_BUNDLE || join(cacheRoot(), 'bundle', kubernetes);

/** Why the bundle cannot serve a node (missing or incomplete), or undefined. */
export function bundleProblem(): string | undefined {
  try {
    readNodeBundle(bundleDir);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Images kubeadm init of a cluster needs (asked of the bundle's kubeadm) that the bundle does not hold. */
export function imagesMissing(cluster: string): string[] {
  const wanted = execFileSync(
    join(bundleDir, 'bin', 'kubeadm'),
    ['config', 'images', 'list', `--config=${join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml')}`],
    { encoding: 'utf8' },
  )
    .split('\n')
    .filter(Boolean);
  const have = new Set(readNodeBundle(bundleDir).images.map((i) => i.name));
  return wanted.filter((w) => !have.has(w));
}
