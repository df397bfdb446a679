// versions.yaml is the only place versions live: every manifest, Dockerfile, script, test harness
// and document that names a pinned component names the pinned version. Test cases themselves
// (test/**/*.test.ts) may hold deliberately wrong fixtures and are not scanned.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { loadPins, render, type K8sObject, type Pins } from './gitops/gitops.js';
import { repoRoot } from './harness/paths.js';

interface Rule {
  what: string;
  pattern: RegExp;
  expected: (p: Pins) => string;
  /** Turns the match into the value compared with `expected`. */
  value?: (m: RegExpMatchArray) => string;
}

const minor = (v: string): string => `v${v.split('.').slice(0, 2).join('.')}`;

const RULES: Rule[] = [
  {
    what: 'kubeadm kubernetesVersion',
    pattern: /kubernetesVersion:\s*v?(\d+\.\d+\.\d+)/g,
    expected: (p) => p.kubernetes,
  },
  { what: 'k8s.io/kubernetes module', pattern: /k8s\.io\/kubernetes@v(\d+\.\d+\.\d+)/g, expected: (p) => p.kubernetes },
  {
    what: 'Pod Security Standards version',
    pattern: /pod-security\.kubernetes\.io\/[a-z]+-version:\s*(v[\d.]+)/g,
    expected: (p) => minor(p.kubernetes),
  },
  {
    what: 'Flannel manifest or image',
    pattern: /flannel-io\/flannel(?:\/releases\/download\/|\/|:|@)(v\d+\.\d+\.\d+)/g,
    expected: (p) => p.flannel,
  },
  {
    what: 'local-path-provisioner',
    pattern: /local-path-provisioner[/:@](v\d+\.\d+\.\d+)/g,
    expected: (p) => p.localPath,
  },
  { what: 'KubeRay operator image', pattern: /kuberay\/operator:(v\d+\.\d+\.\d+)/g, expected: (p) => p.kuberay },
  { what: 'KubeRay Go module', pattern: /kuberay\/ray-operator@(v\d+\.\d+\.\d+)/g, expected: (p) => p.kuberay },
  { what: 'Argo CD manifest', pattern: /argoproj\/argo-cd\/(v\d+\.\d+\.\d+)\//g, expected: (p) => p.argocd },
  { what: 'Argo CD image', pattern: /argoproj\/argocd:(v\d+\.\d+\.\d+)/g, expected: (p) => p.argocd },
  { what: 'Argo CD Go module', pattern: /argo-cd\/v3@(v\d+\.\d+\.\d+)/g, expected: (p) => p.argocd },
  { what: 'Ray image', pattern: /rayproject\/ray:(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'Ray build argument', pattern: /\bRAY_VERSION=(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'RayCluster rayVersion', pattern: /rayVersion:\s*"?(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'Ray from PyPI', pattern: /\bray(?:\[[a-z,]+\])?==(\d+\.\d+\.\d+)/g, expected: (p) => p.ray },
  { what: 'megatron-core from PyPI', pattern: /\bmegatron-core==(\d+\.\d+\.\d+)/g, expected: (p) => p.megatronCore },
  { what: 'torch from PyPI', pattern: /\btorch==(\d+\.\d+\.\d+)/g, expected: (p) => p.torch },
  {
    what: 'Python tag of the Ray image',
    pattern: /(?:PYTHON_TAG=|rayproject\/ray:[\d.]+-)py(\d)(\d+)\b/g,
    expected: (p) => p.python,
    value: (m) => `${m[1]}.${m[2]}`,
  },
  {
    what: 'Node.js base image',
    pattern: /(?:\bNODE_IMAGE=|\bnode:)(\d+\.\d+\.\d+-[a-z0-9-]+)/g,
    expected: (p) => p.nodeImage,
  },
  {
    what: 'Node.js major',
    pattern: /\bNode(?:\.js)? (\d+)\b|\bnode_(\d+)\.x\b|\bnvm install (\d+)\b/g,
    expected: (p) => p.node,
    value: (m) => m[1] ?? m[2] ?? m[3] ?? '',
  },
  {
    what: 'Debian image of the native tokenizer build',
    pattern: /\bNATIVE_BUILD_IMAGE=(\S+)/g,
    expected: (p) => p.nativeBuildImage,
  },
  { what: 'busybox image', pattern: /busybox:(\d+\.\d+\.\d+)/g, expected: (p) => p.busybox },
  {
    what: 'SeaweedFS Go module',
    pattern: /seaweedfs\/seaweedfs(?:\/weed)?@(v[0-9][\w.-]*)/g,
    expected: (p) => p.seaweedfs ?? '(no seaweedfs pin)',
  },
  {
    what: 'containerd Go module',
    pattern: /containerd\/containerd\/v2@(v\d+\.\d+\.\d+)/g,
    expected: (p) => p.containerd,
  },
  { what: 'cri-tools Go module', pattern: /cri-tools@(v\d+\.\d+\.\d+)/g, expected: (p) => p.crictl },
  {
    what: 'flannel CNI plugin Go module',
    pattern: /containernetworking\/plugins@(v\d+\.\d+\.\d+)/g,
    expected: (p) => p.flannelCni,
  },
  {
    what: 'Pushgateway image or Go module',
    pattern: /prometheus\/pushgateway[:@](v\d+\.\d+\.\d+)/g,
    expected: (p) => p.pushgateway,
  },
  {
    what: 'prometheus-operator Go module',
    pattern: /prometheus-operator\/prometheus-operator@(v\d+\.\d+\.\d+)/g,
    expected: (p) => p.prometheusOperator,
  },
];

/** Tracked and new files of the tree, minus versions.yaml, lock files and test cases. */
function scannedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot, encoding: 'utf8' });
  return out
    .split('\0')
    .filter(Boolean)
    .filter(
      (f) =>
        f !== 'versions.yaml' &&
        !f.endsWith('package-lock.json') &&
        !f.endsWith('.test.ts') &&
        !f.startsWith('node_modules/'),
    )
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
        hits.push({
          rule: rule.what,
          file,
          line: text.slice(0, m.index).split('\n').length,
          found,
          expected: rule.expected(pins),
        });
      }
    }
  }
  return hits;
}

describe('versions.yaml', () => {
  const pins = loadPins();
  const hits = scan(pins);

  it('every mention of a pinned component in the tree names the pinned version', () => {
    const wrong = hits
      .filter((h) => h.found !== h.expected)
      .map((h) => `${h.file}:${h.line}: ${h.rule} ${h.found}, versions.yaml says ${h.expected}`);
    expect(wrong).toEqual([]);
  });

  it.each([
    ['kubeadm kubernetesVersion', 'clusters/'],
    ['Pod Security Standards version', 'apps/'],
    ['Flannel manifest or image', 'infrastructure/flannel/'],
    ['local-path-provisioner', 'infrastructure/local-path/'],
    ['KubeRay Go module', 'infrastructure/kuberay/'],
    ['Argo CD Go module', 'argocd/install/'],
    ['Ray build argument', 'images/tokenizer/'],
    ['RayCluster rayVersion', 'apps/wiki-tokenizer/'],
    ['Python tag of the Ray image', 'images/tokenizer/'],
    ['Node.js base image', 'images/submitter/'],
    ['Node.js base image', 'images/tokenizer/'],
    ['Node.js major', 'README.md'],
    ['Node.js major', 'docs/bootstrap.md'],
    ['busybox image', 'infrastructure/local-path/'],
  ])('the pin is actually used: %s in %s', (rule, prefix) => {
    expect(hits.filter((h) => h.rule === rule && h.file.startsWith(prefix)).length).toBeGreaterThan(0);
  });

  it('the upstream manifests run the images of the pinned releases', async () => {
    const images = (objects: K8sObject[]): string[] =>
      objects.flatMap((o) => {
        const pod = (
          o.spec as
            | { template?: { spec?: { containers?: { image: string }[]; initContainers?: { image: string }[] } } }
            | undefined
        )?.template?.spec;
        return [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])].map((c) => c.image);
      });
    expect(images(await render('infrastructure/flannel'))).toContain(`ghcr.io/flannel-io/flannel:${pins.flannel}`);
    expect(images(await render('infrastructure/local-path'))).toContain(
      `docker.io/rancher/local-path-provisioner:${pins.localPath}`,
    );
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

  describe('Node.js', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      engines: { node: string };
      scripts: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const version = pins.nodeImage.split('-')[0] ?? '';

    it('package.json targets the pinned major: engines is one >=X.Y.Z bound (bin/check-node.js reads it), @types/node', () => {
      expect(pkg.engines.node).toMatch(new RegExp(`^>=${pins.node}\\.\\d+\\.\\d+$`));
      expect(
        semver.satisfies(version, pkg.engines.node),
        `nodeImage ${pins.nodeImage} vs engines ${pkg.engines.node}`,
      ).toBe(true);
      expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^?${pins.node}\\.`));
      expect(pins.nodeImage.startsWith(`${pins.node}.`)).toBe(true);
    });

    it('the suite runs on the pinned major (.ci/run puts .ci/pinned-node first on PATH before npm ci)', () => {
      expect(process.versions.node.split('.')[0], `${process.execPath}: export PATH="$(.ci/pinned-node):$PATH"`).toBe(
        pins.node,
      );
      const ci = readFileSync(path.join(repoRoot, '.ci/run'), 'utf8');
      const pinned = ci.indexOf('PATH="$(.ci/pinned-node):$PATH"');
      expect(pinned).toBeGreaterThan(0);
      expect(pinned).toBeLessThan(ci.indexOf('npm ci'));
    });

    it('every locked dependency declares support for the pinned Node.js version', () => {
      const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { engines?: { node?: string } | string[] }>;
      };
      const refused = Object.entries(lock.packages)
        .map(([name, p]) => [name || 'package.json', Array.isArray(p.engines) ? undefined : p.engines?.node] as const)
        .filter(([, range]) => range !== undefined && !semver.satisfies(version, range))
        .map(([name, range]) => `${name}: node ${range}`);
      expect(refused, `Node.js ${version}`).toEqual([]);
    });

    it('on an older Node.js, npm install (preinstall) and the launcher stop with exit 2 and say what to do', async () => {
      expect(pkg.scripts.preinstall).toBe('node bin/check-node.js');
      expect(readFileSync(path.join(repoRoot, 'bin/tokenize-wiki.js'), 'utf8')).toMatch(
        /^import '\.\/check-node\.js';$/m,
      );
      // This Node.js is "older" than a package that asks for the next major.
      const dir = mkdtempSync(path.join(tmpdir(), 'tw-check-node-'));
      try {
        mkdirSync(path.join(dir, 'bin'));
        copyFileSync(path.join(repoRoot, 'bin/check-node.js'), path.join(dir, 'bin/check-node.js'));
        const next = Number(pins.node) + 1;
        writeFileSync(
          path.join(dir, 'package.json'),
          JSON.stringify({ type: 'module', engines: { node: `>=${next}.0.0` } }),
        );
        const r = spawnSync(process.execPath, ['bin/check-node.js'], { cwd: dir, encoding: 'utf8' });
        expect(r.status).toBe(2);
        expect(r.stderr).toContain(`needs Node.js >=${next}.0.0`);
        expect(r.stderr).toContain(`this is Node.js ${process.versions.node}`);
        expect(r.stderr).toContain('export PATH="$(.ci/pinned-node):$PATH"');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(spawnSync(process.execPath, ['bin/check-node.js'], { cwd: repoRoot, encoding: 'utf8' }).status).toBe(0);
    });
  });
});
