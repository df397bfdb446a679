// versions.yaml is the only place versions live: every manifest, Dockerfile, script, test harness
// and document that names a pinned component names the pinned version. Test cases themselves
// (test/**/*.test.ts) may hold deliberately wrong fixtures and are not scanned.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listKustomizations, loadPins, parseRemote, render, repoRoot, type K8sObject, type Pins } from './gitops/gitops.js';

interface Rule {
  what: string;
  pattern: RegExp;
  expected: (p: Pins) => string;
  /** Turns the match into the value compared with `expected`. */
  value?: (m: RegExpMatchArray) => string;
}

const minor = (v: string): string => `v${v.split('.').slice(0, 2).join('.')}`;

const RULES: Rule[] = [
  { what: 'kubeadm kubernetesVersion', pattern: /kubernetesVersion:\s*v?(\d+\.\d+\.\d+)/g, expected: (p) => p.kubernetes },
  { what: 'k8s.io/kubernetes module', pattern: /k8s\.io\/kubernetes@v(\d+\.\d+\.\d+)/g, expected: (p) => p.kubernetes },
  { what: 'Pod Security Standards version', pattern: /pod-security\.kubernetes\.io\/[a-z]+-version:\s*(v[\d.]+)/g, expected: (p) => minor(p.kubernetes) },
  { what: 'Flannel manifest or image', pattern: /flannel-io\/flannel(?:\/releases\/download\/|\/|:|@)(v\d+\.\d+\.\d+)/g, expected: (p) => p.flannel },
  { what: 'local-path-provisioner', pattern: /local-path-provisioner[/:@](v\d+\.\d+\.\d+)/g, expected: (p) => p.localPath },
  { what: 'KubeRay base', pattern: /ray-project\/kuberay\/[^\s?'"]*\?ref=(v\d+\.\d+\.\d+)/g, expected: (p) => p.kuberay },
  { what: 'KubeRay operator image', pattern: /kuberay\/operator:(v\d+\.\d+\.\d+)/g, expected: (p) => p.kuberay },
  { what: 'KubeRay Go module', pattern: /kuberay\/ray-operator@(v\d+\.\d+\.\d+)/g, expected: (p) => p.kuberay },
  { what: 'Argo CD manifest', pattern: /argoproj\/argo-cd\/(v\d+\.\d+\.\d+)\//g, expected: (p) => p.argocd },
  { what: 'Argo CD image', pattern: /argoproj\/argocd:(v\d+\.\d+\.\d+)/g, expected: (p) => p.argocd },
  { what: 'Argo CD Go module', pattern: /argo-cd\/v3@(v\d+\.\d+\.\d+)/g, expected: (p) => p.argocd },
  { what: 'Ray image', pattern: /rayproject\/ray:(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'Ray build argument', pattern: /\bRAY_VERSION=(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'RayCluster rayVersion', pattern: /rayVersion:\s*"?(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'Ray from PyPI', pattern: /\bray(?:\[[a-z,]+\])?==(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'Python tag of the Ray image', pattern: /(?:PYTHON_TAG=|rayproject\/ray:[\d.]+-)py(\d)(\d+)\b/g, expected: (p) => p.python, value: (m) => `${m[1]}.${m[2]}` },
  { what: 'Node.js base image', pattern: /(?:\bNODE_IMAGE=|library\/node:)(\d+\.\d+\.\d+-[a-z0-9-]+)/g, expected: (p) => p.nodeImage },
  { what: 'busybox image', pattern: /busybox:(\d+\.\d+\.\d+)/g, expected: (p) => p.busybox },
  { what: 'SeaweedFS Go module', pattern: /seaweedfs\/seaweedfs(?:\/weed)?@(v[0-9][\w.-]*)/g, expected: (p) => p.seaweedfs ?? '(no seaweedfs pin)' },
  { what: 'containerd Go module', pattern: /containerd\/containerd\/v2@(v\d+\.\d+\.\d+)/g, expected: (p) => p.containerd },
  { what: 'cri-tools Go module', pattern: /cri-tools@(v\d+\.\d+\.\d+)/g, expected: (p) => p.crictl },
  { what: 'flannel CNI plugin Go module', pattern: /containernetworking\/plugins@(v\d+\.\d+\.\d+)/g, expected: (p) => p.flannelCni },
  { what: 'prometheus-operator Go module', pattern: /prometheus-operator\/prometheus-operator@(v\d+\.\d+\.\d+)/g, expected: (p) => p.prometheusOperator },
];

/** Tracked and new files of the tree, minus versions.yaml, lock files and test cases. */
function scannedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot, encoding: 'utf8' });
  return out
    .split('\0')
    .filter(Boolean)
    .filter((f) => f !== 'versions.yaml' && !f.endsWith('package-lock.json') && !f.endsWith('.test.ts') && !f.startsWith('node_modules/'))
    .filter((f) => /\.(ya?ml|ts|mts|js|mjs|json|md|sh|lua|go|txt|toml)$|Dockerfile$|^\.ci\//.test(f));
}

interface Hit {
  rule: string;
  file: string;
  line: number;
  found: string;
  expected: string;
}

function scan(pins: Pins): Hit[] {
  const hits: Hit[] = [];
  for (const file of scannedFiles()) {
    let text: string;
    try {
      text = readFileSync(path.join(repoRoot, file), 'utf8');
    } catch {
      continue; // listed by git but deleted in the work tree
    }
    for (const rule of RULES) {
      for (const m of text.matchAll(rule.pattern)) {
        const found = rule.value ? rule.value(m) : (m[1] ?? '');
        hits.push({ rule: rule.what, file, line: text.slice(0, m.index).split('\n').length, found, expected: rule.expected(pins) });
      }
    }
  }
  return hits;
}

describe('versions.yaml', () => {
  const pins = loadPins();
  const hits = scan(pins);

  it('every mention of a pinned component in the tree names the pinned version', () => {
    const wrong = hits.filter((h) => h.found !== h.expected).map((h) => `${h.file}:${h.line}: ${h.rule} ${h.found}, versions.yaml says ${h.expected}`);
    expect(wrong).toEqual([]);
  });

  it.each([
    ['kubeadm kubernetesVersion', 'clusters/'],
    ['Pod Security Standards version', 'apps/'],
    ['Flannel manifest or image', 'infrastructure/flannel/'],
    ['local-path-provisioner', 'infrastructure/local-path/'],
    ['KubeRay base', 'infrastructure/kuberay/'],
    ['Argo CD manifest', 'argocd/install/'],
    ['Ray build argument', 'images/tokenizer/'],
    ['RayCluster rayVersion', 'apps/wiki-tokenizer/'],
    ['Python tag of the Ray image', 'images/tokenizer/'],
    ['Node.js base image', 'images/submitter/'],
    ['busybox image', 'infrastructure/local-path/'],
  ])('the pin is actually used: %s in %s', (rule, prefix) => {
    expect(hits.filter((h) => h.rule === rule && h.file.startsWith(prefix)).length).toBeGreaterThan(0);
  });

  it('every remote kustomize reference is at the pinned version of its project', () => {
    const expected: Record<string, string> = {
      'flannel-io/flannel': pins.flannel,
      'rancher/local-path-provisioner': pins.localPath,
      'ray-project/kuberay': pins.kuberay,
      'argoproj/argo-cd': pins.argocd,
    };
    const refs = listKustomizations().flatMap((k) => k.resources.map((r) => [k.dir, parseRemote(r)] as const));
    for (const [dir, remote] of refs) {
      if (!remote) continue;
      expect(remote.pin, `${dir}: ${remote.ref}`).toBe(expected[remote.repo]);
    }
    expect(refs.filter(([, r]) => r).length).toBe(4);
  });

  it('the upstream manifests run the images of the pinned releases', async () => {
    const images = (objects: K8sObject[]): string[] =>
      objects.flatMap((o) => {
        const pod = (o.spec as { template?: { spec?: { containers?: { image: string }[]; initContainers?: { image: string }[] } } } | undefined)?.template?.spec;
        return [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])].map((c) => c.image);
      });
    expect(images(await render('infrastructure/flannel'))).toContain(`ghcr.io/flannel-io/flannel:${pins.flannel}`);
    expect(images(await render('infrastructure/local-path'))).toContain(`docker.io/rancher/local-path-provisioner:${pins.localPath}`);
    expect(images(await render('infrastructure/kuberay'))).toEqual([`quay.io/kuberay/operator:${pins.kuberay}`]);
    expect(images(await render('argocd/install'))).toContain(`quay.io/argoproj/argocd:${pins.argocd}`);
  });

  it('the bundle runs a containerd v2 and the crictl of the pinned Kubernetes minor (cri-tools follow its releases)', () => {
    expect(pins.containerd).toMatch(/^v2\./);
    expect(minor(pins.crictl.slice(1))).toBe(minor(pins.kubernetes));
  });

  it('the CRDs we validate against are those of the KubeRay we deploy', () => {
    expect(pins.kuberayCrds).toBe(pins.kuberay);
  });

  it('package.json targets the pinned Node.js major', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toMatch(new RegExp(`>=${pins.node}\\.`));
    expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^?${pins.node}\\.`));
    expect(pins.nodeImage.startsWith(`${pins.node}.`)).toBe(true);
  });
});
