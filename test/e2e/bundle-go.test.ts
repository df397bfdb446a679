// The Go-built part of the air-gapped bundle: every binary reports the version pinned in versions.yaml (or the
// one the pinned Kubernetes release expects), and bundle.json lists it with its sha256. Runs build-bundle over a
// cached bundle first (it only checks, or rebuilds what the tree changed). `npm run e2e` builds the bundle before
// the suites; run alone without one (vitest directly, or not as root), the suite says it did not run.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../scripts/build-bundle.mjs';
import { bundleDir, cacheRoot } from '../../scripts/lib/bundle/go-builds.js';
import { MANIFEST_FILE, readManifest, type BundleManifest } from '../../scripts/lib/bundle/manifest.js';
import { processIO } from '../../scripts/lib/cli.js';
import { ZxHost } from '../../scripts/lib/host.js';
import { loadVersions } from '../../scripts/lib/versions.js';
import { repoRoot } from '../harness/paths.js';

const pins = loadVersions(repoRoot);
const bundle = bundleDir(cacheRoot(), pins.kubernetes);
let manifest: BundleManifest;
const cached = existsSync(join(bundle, MANIFEST_FILE));
if (!cached)
  process.stderr.write(
    `e2e: bundle suite NOT RUN: no ${join(bundle, MANIFEST_FILE)} (build it with \`node --import tsx scripts/build-bundle.mts\`)\n`,
  );

beforeAll(async () => {
  if (!cached) return;
  const io = { ...processIO(pathToFileURL(join(repoRoot, 'scripts', 'build-bundle.mts')).href), out: () => {} };
  expect(await buildBundle([], io)).toBe(0);
  manifest = await readManifest(new ZxHost(), bundle);
}, 4 * 3600_000);

/** stdout and stderr together: some tools print their version on stderr. */
function output(file: string, args: readonly string[]): string {
  const r = spawnSync(join(bundle, file), args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/** The module version Go recorded in the binary (kept by -s -w: it is not a symbol). */
function builtModule(file: string): string {
  return execFileSync('go', ['version', '-m', join(bundle, file)], { encoding: 'utf8' });
}

describe.skipIf(!cached)('bundle: Go-built binaries report the pinned versions', () => {
  const k = `v${pins.kubernetes}`;
  const cases: [file: string, args: string[], expected: () => string][] = [
    ['bin/kubelet', ['--version'], () => `Kubernetes ${k}`],
    ['bin/kubeadm', ['version', '-o', 'short'], () => k],
    ['bin/kubectl', ['version', '--client'], () => `Client Version: ${k}`],
    ['components/kube-apiserver', ['--version'], () => `Kubernetes ${k}`],
    ['components/kube-controller-manager', ['--version'], () => `Kubernetes ${k}`],
    ['components/kube-scheduler', ['--version'], () => `Kubernetes ${k}`],
    ['components/kube-proxy', ['--version'], () => `Kubernetes ${k}`],
    ['components/etcd', ['--version'], () => `etcd Version: ${manifest.versions.etcd}`],
    ['bin/containerd', ['--version'], () => ` ${pins.containerd} `],
    ['bin/ctr', ['--version'], () => `ctr github.com/containerd/containerd/v2 ${pins.containerd}`],
    ['bin/containerd-shim-runc-v2', ['-v'], () => `Version:  ${pins.containerd}`],
    ['bin/crictl', ['--version'], () => `crictl version ${pins.crictl}`],
    ['components/coredns', ['-version'], () => `CoreDNS-${manifest.versions.coredns?.replace(/^v/, '')}`],
    ['components/pause', ['-v'], () => `pause.c v${manifest.versions.pause}`],
    ['components/flanneld', ['--version'], () => pins.flannel],
    ['components/local-path-provisioner', ['--version'], () => pins.localPath],
    ['components/kustomize', ['version'], () => manifest.versions.kustomize ?? '(no kustomize version)'],
    ['components/argocd', ['version', '--client'], () => `argocd: ${pins.argocd}+unknown`],
  ];
  it.each(cases)('%s %s', (file, args, expected) => {
    expect(output(file, args)).toContain(expected());
  });

  it.each<[file: string, module: string, version: () => string | undefined]>([
    ['components/kuberay-operator', 'github.com/ray-project/kuberay/ray-operator', () => pins.kuberay],
    ['components/flannel', 'github.com/containernetworking/plugins', () => pins.flannelCni],
    ['components/kustomize', 'sigs.k8s.io/kustomize/kustomize/v5', () => manifest.versions.kustomize],
    ['components/argocd', 'github.com/argoproj/argo-cd/gitops-engine', () => pins.argocdGitopsEngine],
  ])('%s was built from %s', (file, module, version) => {
    expect(builtModule(file)).toContain(`${module}\t${version() ?? '(no version)'}`);
  });

  it('versions kubeadm expects are recorded for the image builder', () => {
    const constants = readFileSync(
      join(
        execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim(),
        `k8s.io/kubernetes@${k}`,
        'cmd/kubeadm/app/constants/constants.go',
      ),
      'utf8',
    );
    expect(constants).toContain(`CoreDNSVersion = "${manifest.versions.coredns}"`);
    expect(constants).toContain(`PauseVersion = "${manifest.versions.pause}"`);
    expect(constants).toContain(`DefaultEtcdVersion = "${manifest.versions.etcdImage}"`);
    expect(manifest.versions.etcdImage).toMatch(new RegExp(`^${manifest.versions.etcd}-\\d+$`));
  });

  it('bundle.json lists every binary with its sha256', () => {
    const files = new Map(manifest.files.map((f) => [f.path, f]));
    for (const [file] of cases) {
      const entry = files.get(file);
      expect(entry, file).toBeDefined();
      expect(
        createHash('sha256')
          .update(readFileSync(join(bundle, file)))
          .digest('hex'),
        file,
      ).toBe(entry?.sha256);
    }
    expect(files.has('components/weed')).toBe(true);
    expect(manifest.builds.map((b) => b.name)).toEqual(
      expect.arrayContaining(['kubernetes', 'etcd', 'containerd', 'pause', 'weed']),
    );
  });
});
