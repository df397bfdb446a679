// Pure parts of the bundle's Go builds: what is read from upstream modules, the go commands, bundle.json's files.
import { describe, expect, it } from 'vitest';
import {
  argocdGoMod,
  buildPaths,
  componentBuilds,
  flannelCniImageTag,
  goBinaryName,
  goCommand,
  goEnv,
  kubernetesBuilds,
  kubernetesFacts,
  pauseCommand,
  requiredVersion,
  throwawayGoMod,
  type GoBuild,
  type GoPins,
} from '../../scripts/lib/bundle/go-builds.js';
import { parseFileEntries } from '../../scripts/lib/bundle/manifest.js';

const CONSTANTS = `
const (
	// DefaultEtcdVersion indicates the default etcd version that kubeadm uses
	DefaultEtcdVersion = "3.6.8-0"
	CoreDNSVersion = "v1.14.2"
	PauseVersion = "3.10.2"
)`;
const GO_MOD =
  'module k8s.io/kubernetes\n\nrequire (\n\tsigs.k8s.io/kustomize/api v0.21.1 // indirect\n\tsigs.k8s.io/kustomize/kustomize/v5 v5.8.1 // indirect\n)\n';
const facts = kubernetesFacts({
  etcdSh: 'ETCD_VERSION=${ETCD_VERSION:-3.6.8}\n',
  kubeadmConstants: CONSTANTS,
  goMod: GO_MOD,
});
const pins: GoPins = {
  kubernetes: '1.36.3',
  containerd: 'v2.4.2',
  crictl: 'v1.36.0',
  flannel: 'v0.28.10',
  flannelCni: 'v0.9.1',
  localPath: 'v0.0.37',
  kuberay: 'v1.6.2',
  argocd: 'v3.5.7',
  argocdGitopsEngine: 'v0.0.0-20260914071520-c9c369efcc5b',
};

describe('facts read from the kubernetes module', () => {
  it('takes etcd, the image tags kubeadm expects and the kustomize kubectl embeds', () => {
    expect(facts).toEqual({
      etcd: '3.6.8',
      etcdImage: '3.6.8-0',
      coredns: 'v1.14.2',
      pause: '3.10.2',
      kustomize: 'v5.8.1',
    });
  });

  it('names the file and the constant that is missing', () => {
    expect(() =>
      kubernetesFacts({ etcdSh: 'ETCD_VERSION=${ETCD_VERSION:-3.6.8}\n', kubeadmConstants: 'const ()', goMod: GO_MOD }),
    ).toThrow(/constants\.go: constant DefaultEtcdVersion not found/);
    expect(() => requiredVersion('module x\n', 'sigs.k8s.io/kustomize/kustomize/v5', 'go.mod')).toThrow(
      /go.mod: no requirement of sigs/,
    );
  });

  it("reads the flannel CNI plugin tag from flannel's manifest", () => {
    expect(
      flannelCniImageTag(
        '      - name: install-cni-plugin\n        image: ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3\n',
      ),
    ).toBe('v1.9.1-flannel3');
    expect(() => flannelCniImageTag('kind: DaemonSet\n')).toThrow(/no flannel-cni-plugin image/);
  });
});

describe('what is built', () => {
  it('builds the seven Kubernetes binaries in one go build, with the version stamped', () => {
    const [k8s, etcd] = kubernetesBuilds(pins, facts);
    expect(k8s?.outputs.map((o) => `${o.dest}/${o.name}`)).toEqual([
      'bin/kubelet',
      'bin/kubeadm',
      'bin/kubectl',
      'components/kube-apiserver',
      'components/kube-controller-manager',
      'components/kube-scheduler',
      'components/kube-proxy',
    ]);
    expect(k8s?.ldflags).toContain('-X k8s.io/component-base/version.gitVersion=v1.36.3');
    expect(k8s?.ldflags).toContain('-X k8s.io/client-go/pkg/version.gitVersion=v1.36.3');
    expect(etcd).toMatchObject({ module: 'go.etcd.io/etcd/server/v3', version: 'v3.6.8', via: 'dependency' });
  });

  it('builds each component at its pin or at the version the Kubernetes release names', () => {
    const byName = new Map(componentBuilds(pins, facts).map((b) => [b.name, b]));
    expect(byName.get('containerd')?.version).toBe('v2.4.2');
    expect(byName.get('coredns')?.version).toBe('v1.14.2');
    expect(byName.get('kustomize')?.version).toBe('v5.8.1');
    expect(byName.get('flanneld')).toMatchObject({ version: 'v0.28.10', cgo: true });
    const files = [...byName.values()].flatMap((b) => b.outputs.map((o) => `${o.dest}/${o.name}`));
    expect(new Set(files).size).toBe(files.length);
  });
});

describe('flanneld', () => {
  it('is built from a copy of the module without the one backend whose SDK the proxy refuses', () => {
    const flanneld = componentBuilds(pins, facts).find((b) => b.name === 'flanneld');
    const mainGo =
      'import (\n\t_ "github.com/flannel-io/flannel/pkg/backend/vxlan"\n\t_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"\n)\n';
    expect(flanneld?.edits?.['main.go']?.(mainGo)).toBe(
      'import (\n\t_ "github.com/flannel-io/flannel/pkg/backend/vxlan"\n)\n',
    );
    const goMod =
      'require (\n\tgithub.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.188\n\tgolang.org/x/sys v0.40.0\n)\n';
    expect(flanneld?.edits?.['go.mod']?.(goMod)).toBe('require (\n\tgolang.org/x/sys v0.40.0\n)\n');
    expect(() => flanneld?.edits?.['main.go']?.('package main\n')).toThrow(/flannel main.go: no line matching/);
  });
});

describe('Argo CD', () => {
  const goMod =
    'module github.com/argoproj/argo-cd/v3\n\nreplace github.com/argoproj/argo-cd/gitops-engine => ./gitops-engine\n';

  it('takes its nested gitops-engine from the served module version instead of the folder its zip lacks', () => {
    expect(argocdGoMod(goMod, 'v0.0.0-20260914071520-c9c369efcc5b')).toBe(
      'module github.com/argoproj/argo-cd/v3\n\nreplace github.com/argoproj/argo-cd/gitops-engine => github.com/argoproj/argo-cd/gitops-engine v0.0.0-20260914071520-c9c369efcc5b\n',
    );
    expect(() => argocdGoMod('module x\n', 'v0.0.0-x')).toThrow(
      /no replace of github.com\/argoproj\/argo-cd\/gitops-engine/,
    );
  });

  it('builds the pinned release', () => {
    const argocd = componentBuilds(pins, facts).find((b) => b.name === 'argocd');
    expect(argocd).toMatchObject({ module: 'github.com/argoproj/argo-cd/v3', version: 'v3.5.7', via: 'source' });
    expect(argocd?.ldflags).toContain('common.version=3.5.7');
  });
});

describe('go commands', () => {
  const paths = buildPaths('/cache/bundle/1.36.3', 'x');
  const build = (over: Partial<GoBuild>): GoBuild => ({
    name: 'x',
    module: 'example.com/m',
    version: 'v1.2.3',
    via: 'install',
    outputs: [{ name: 'a', dest: 'bin', pkg: 'example.com/m/cmd/a' }],
    cgo: false,
    ldflags: '-s -w',
    ...over,
  });

  it('installs module packages at the version, into the scratch GOBIN', () => {
    expect(goCommand(build({}), paths)).toEqual([
      'go',
      '-C',
      paths.work,
      'install',
      '-trimpath',
      '-ldflags',
      '-s -w',
      'example.com/m/cmd/a@v1.2.3',
    ]);
    expect(goEnv(build({})).GOFLAGS).toBe('-p=2 -buildvcs=false'); // go install pkg@version refuses -mod
  });

  it('builds a source copy with -mod=mod and one output folder', () => {
    const b = build({
      via: 'source',
      outputs: [
        { name: 'a', dest: 'bin', pkg: './cmd/a' },
        { name: 'b', dest: 'components', pkg: './cmd/b' },
      ],
    });
    expect(goCommand(b, paths)).toEqual([
      'go',
      '-C',
      `${paths.work}/src`,
      'build',
      '-trimpath',
      '-ldflags',
      '-s -w',
      '-o',
      `${paths.out}/`,
      './cmd/a',
      './cmd/b',
    ]);
    expect(goEnv({ ...b, cgo: true, toolchain: 'go1.27.3' })).toEqual({
      GOWORK: 'off',
      GOFLAGS: '-mod=mod -p=2 -buildvcs=false',
      CGO_ENABLED: '1',
      GOTOOLCHAIN: 'go1.27.3',
    });
  });

  it('requires a dependency-built module from a throwaway module', () => {
    expect(
      throwawayGoMod(
        build({ via: 'dependency', name: 'etcd', module: 'go.etcd.io/etcd/server/v3', version: 'v3.6.8' }),
      ),
    ).toBe('module tokenize-wiki/bundle-etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v3.6.8\n');
  });

  it('knows the file go names a binary after', () => {
    expect(goBinaryName('./cmd/kubelet', 'k8s.io/kubernetes')).toBe('kubelet');
    expect(goBinaryName('sigs.k8s.io/kustomize/kustomize/v5', 'sigs.k8s.io/kustomize/kustomize/v5')).toBe('kustomize');
    expect(goBinaryName('go.etcd.io/etcd/server/v3', 'go.etcd.io/etcd/server/v3')).toBe('server');
    expect(goBinaryName('.', 'github.com/coredns/coredns')).toBe('coredns');
  });

  it('compiles pause.c the way its Makefile does, with the version kubeadm expects', () => {
    expect(pauseCommand('/m/pause.c', '/b/pause', '3.10.2')).toEqual([
      'gcc',
      '-Os',
      '-Wall',
      '-Werror',
      '-static',
      '-DVERSION=v3.10.2',
      '-o',
      '/b/pause',
      '/m/pause.c',
    ]);
  });
});

describe('bundle.json files', () => {
  it('pairs sha256sum with stat output, relative to the bundle, sorted', () => {
    const sha = (c: string) => c.repeat(64);
    const sums = `${sha('b')}  /x/components/etcd\n${sha('a')}  /x/bin/kubelet\n`;
    const sizes = '10 /x/components/etcd\n20 /x/bin/kubelet\n';
    expect(parseFileEntries('/x', sums, sizes)).toEqual([
      { path: 'bin/kubelet', sha256: sha('a'), size: 20 },
      { path: 'components/etcd', sha256: sha('b'), size: 10 },
    ]);
  });
});
