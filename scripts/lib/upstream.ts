// The upstream manifests the GitOps tree deploys, vendored into it at the pinned releases.
//
// Why vendored rather than remote kustomize references: an air-gapped cluster's Argo CD (and the bootstrap's
// `kubectl apply -k infrastructure/flannel`) can reach our Git repository but not GitHub; with the upstream files in the
// tree, the repository is all a cluster needs. The files are copied byte for byte from the upstream project's Go
// module at the pinned tag (the same files a raw GitHub URL or a `?ref=<tag>` base would give); `test/gitops` checks
// they still are, so a pin bump without re-vendoring fails.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Versions } from './versions.js';

export interface Upstream {
  /** Short name, e.g. `kuberay`. */
  name: string;
  module: string;
  version: string;
  /** Files or folders inside the module, copied with their relative paths kept. */
  paths: string[];
  /** Folder of the tree (relative to the repository root) that receives them. */
  into: string;
}

/** Name of the file written beside the vendored files, saying where they come from. */
export const SOURCE_FILE = 'SOURCE.txt';

export function upstreams(v: Versions): Upstream[] {
  return [
    {
      name: 'flannel',
      module: 'github.com/flannel-io/flannel',
      version: v.flannel,
      paths: ['Documentation/kube-flannel.yml'],
      into: 'infrastructure/flannel/upstream',
    },
    {
      name: 'local-path',
      module: 'github.com/rancher/local-path-provisioner',
      version: v.localPath,
      paths: ['deploy/local-path-storage.yaml'],
      into: 'infrastructure/local-path/upstream',
    },
    // The operator's default kustomize base (config/default) and the folders it references.
    {
      name: 'kuberay',
      module: 'github.com/ray-project/kuberay/ray-operator',
      version: v.kuberay,
      paths: ['config/default', 'config/crd', 'config/rbac', 'config/manager'],
      into: 'infrastructure/kuberay/upstream',
    },
    {
      name: 'argocd',
      module: `github.com/argoproj/argo-cd/v${v.argocd.slice(1).split('.')[0] ?? ''}`,
      version: v.argocd,
      paths: ['manifests/install.yaml'],
      into: 'argocd/install/upstream',
    },
  ];
}

/** Every file under the given paths of `root`, as paths relative to `root`, sorted. */
export function filesUnder(root: string, paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    if (!existsSync(abs)) throw new Error(`${abs}: not found`);
    if (statSync(abs).isDirectory()) for (const e of readdirSync(abs)) walk(join(rel, e));
    else out.push(relative(root, abs));
  };
  for (const p of paths) walk(p);
  return out.sort();
}

/** The SOURCE.txt text: where the files came from and their sha256, so a reader can check them by hand. */
export function sourceText(u: Upstream, moduleDir: string): string {
  const lines = [
    `Vendored by scripts/vendor-upstream.mts from the Go module ${u.module}@${u.version} (the upstream repository at tag ${u.version}).`,
    'Do not edit these files: change the pin in versions.yaml and re-run the script.',
    '',
    ...filesUnder(moduleDir, u.paths).map(
      (f) =>
        `${createHash('sha256')
          .update(readFileSync(join(moduleDir, f)))
          .digest('hex')}  ${f}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
