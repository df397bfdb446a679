// The Go-built part of the air-gapped bundle: node binaries (bin/) and the binaries that go into
// component images (components/), built from the Go module proxy at the versions in versions.yaml.
// Each build is one step: checked by its stamp (build/<name>.json), applied under a lock so that
// parallel callers (the bundle script, the test harness, several test files) build it once.
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { goModDir } from '../go-modules.js';
import type { Host } from '../host.js';
import { withLock } from '../lock.js';
import type { Step } from '../run.js';

/** Where built binaries, venvs and the bundle are kept between runs; TW_CACHE_DIR overrides it. */
export function cacheRoot(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.TW_CACHE_DIR || join(homedir(), '.cache', 'tokenize-wiki');
}

/** `<cache>/bundle/<kubernetes version>`: one bundle per Kubernetes release. */
export function bundleDir(cache: string, kubernetes: string): string {
  return join(cache, 'bundle', kubernetes);
}

export interface Output {
  /** File name in the build's root folder. */
  name: string;
  /** Folder under the root: bin (node binaries), components (binaries for images), or '.'. */
  dest: string;
  /** Package to build: relative to the module root for `source` builds, an import path otherwise. */
  pkg: string;
}

/**
 * How a module is built:
 * - `install`: `go install pkg@version`, the way its maintainers document; the binary's build info names the
 *   module version. Refused by Go for modules whose go.mod has replace directives.
 * - `source`: inside a copy of the module, after `goMod` rewrites its go.mod (k8s.io/kubernetes points its
 *   staging modules at folders the module zip leaves out).
 * - `dependency`: as a dependency of a throwaway module, which ignores the target's replace directives
 *   (etcd's server module replaces its sibling modules with relative paths).
 */
export type Via = 'install' | 'source' | 'dependency';

export interface GoBuild {
  name: string;
  module: string;
  version: string;
  via: Via;
  outputs: readonly Output[];
  /** Upstream builds this one with cgo (and links it statically). */
  cgo: boolean;
  ldflags: string;
  tags?: readonly string[];
  /** Rewrites files of a `source` build, by path relative to the module root (go.mod, ...). */
  edits?: Readonly<Record<string, (text: string) => string>>;
  /** GOTOOLCHAIN, for modules that need a newer Go than the machine's. */
  toolchain?: string;
}

/** One finished build, as its stamp records it. */
export const BuildStamp = z.object({
  name: z.string(),
  module: z.string(),
  version: z.string(),
  seconds: z.number(),
  go: z.string(),
  files: z.array(z.string()),
});
export type BuildStamp = z.infer<typeof BuildStamp>;

// ---------------------------------------------------------------------------------------------
// Facts read from the k8s.io/kubernetes module: the versions kubeadm and the release expect.

export interface KubernetesFacts {
  /** etcd release the Kubernetes release tests with (hack/lib/etcd.sh). */
  etcd: string;
  /** Image tags kubeadm pulls (cmd/kubeadm/app/constants): registry.k8s.io/etcd:<etcdImage>, ... */
  etcdImage: string;
  coredns: string;
  pause: string;
  /** kustomize that kubectl embeds (go.mod). */
  kustomize: string;
}

/** The etcd version a Kubernetes release tests with, from its hack/lib/etcd.sh. */
export function etcdVersionOf(etcdSh: string): string {
  const m = /^ETCD_VERSION=\$\{ETCD_VERSION:-(\d+\.\d+\.\d+)\}/m.exec(etcdSh);
  if (!m?.[1]) throw new Error('k8s.io/kubernetes hack/lib/etcd.sh: ETCD_VERSION default not found');
  return m[1];
}

/** A string constant of kubeadm's constants.go, e.g. CoreDNSVersion = "v1.14.2". */
export function goStringConstant(goSource: string, name: string, file: string): string {
  const m = new RegExp(`^\\s*${name}\\s*=\\s*"([^"]+)"`, 'm').exec(goSource);
  if (!m?.[1]) throw new Error(`${file}: constant ${name} not found`);
  return m[1];
}

/** The version go.mod requires of `module` (direct or indirect). */
export function requiredVersion(goMod: string, module: string, file: string): string {
  const m = new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[.]/g, '\\.')}\\s+(v\\S+)`, 'm').exec(goMod);
  if (!m?.[1]) throw new Error(`${file}: no requirement of ${module}`);
  return m[1];
}

export function kubernetesFacts(files: { etcdSh: string; kubeadmConstants: string; goMod: string }): KubernetesFacts {
  const constants = 'k8s.io/kubernetes cmd/kubeadm/app/constants/constants.go';
  return {
    etcd: etcdVersionOf(files.etcdSh),
    etcdImage: goStringConstant(files.kubeadmConstants, 'DefaultEtcdVersion', constants),
    coredns: goStringConstant(files.kubeadmConstants, 'CoreDNSVersion', constants),
    pause: goStringConstant(files.kubeadmConstants, 'PauseVersion', constants),
    kustomize: requiredVersion(files.goMod, 'sigs.k8s.io/kustomize/kustomize/v5', 'k8s.io/kubernetes go.mod'),
  };
}

/** The flannel CNI plugin image tag flannel's own manifest names (Documentation/kube-flannel.yml). */
export function flannelCniImageTag(kubeFlannelYml: string): string {
  const m = /flannel-io\/flannel-cni-plugin:(v[\w.-]+)/.exec(kubeFlannelYml);
  if (!m?.[1]) throw new Error('flannel Documentation/kube-flannel.yml: no flannel-cni-plugin image');
  return m[1];
}

/**
 * k8s.io/kubernetes points its staging modules (k8s.io/api, k8s.io/client-go, ...) at ./staging,
 * which the module zip leaves out. Drop those replaces and require the published v0.<minor>.<patch>.
 */
export function publishedStagingGoMod(goMod: string, kubernetesVersion: string): string {
  const staging = [...goMod.matchAll(/^\s*(k8s\.io\/[\w.-]+) => \.\/staging\/\S+\s*$/gm)].flatMap((m) =>
    m[1] ? [m[1]] : [],
  );
  if (staging.length === 0) throw new Error('k8s.io/kubernetes go.mod: no ./staging replace directives found');
  const published = `v0.${kubernetesVersion.split('.').slice(1).join('.')}`;
  let out = goMod.replace(/^\s*k8s\.io\/[\w.-]+ => \.\/staging\/\S+\s*\n/gm, '');
  for (const mod of staging) {
    out = out.replace(new RegExp(`^(\\s*${mod.replace(/[.]/g, '\\.')}) v0\\.0\\.0\\s*$`, 'm'), `$1 ${published}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What to build

export interface GoPins {
  kubernetes: string;
  argocd: string;
  argocdGitopsEngine: string;
  containerd: string;
  crictl: string;
  flannel: string;
  flannelCni: string;
  localPath: string;
  kuberay: string;
}

const xflags = (pkg: string, vars: Record<string, string>): string[] =>
  Object.entries(vars).map(([k, v]) => `-X ${pkg}.${k}=${v}`);

/** kube-apiserver, kubectl and etcd: what the test harness needs, built as part of the bundle's builds. */
export function kubernetesBuilds(pins: Pick<GoPins, 'kubernetes'>, facts: Pick<KubernetesFacts, 'etcd'>): GoBuild[] {
  const v = pins.kubernetes;
  const [major = '', minor = ''] = v.split('.');
  // hack/lib/version.sh stamps both packages; `kubectl version` reads client-go's.
  const version = { gitVersion: `v${v}`, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const node = ['kubelet', 'kubeadm', 'kubectl'];
  const control = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'];
  return [
    {
      // One `go build` for all seven: the packages they share compile once. Upstream links kubelet with cgo
      // (it is not in hack/lib/golang.sh's KUBE_STATIC_BINARIES); a static kubelet works the same and
      // sharing one build halves the compile time.
      name: 'kubernetes',
      module: 'k8s.io/kubernetes',
      version: `v${v}`,
      via: 'source',
      edits: { 'go.mod': (text) => publishedStagingGoMod(text, v) },
      outputs: [
        ...node.map((name) => ({ name, dest: 'bin' as const, pkg: `./cmd/${name}` })),
        ...control.map((name) => ({ name, dest: 'components' as const, pkg: `./cmd/${name}` })),
      ],
      cgo: false,
      ldflags: [
        '-s -w',
        ...xflags('k8s.io/component-base/version', version),
        ...xflags('k8s.io/client-go/pkg/version', version),
      ].join(' '),
    },
    {
      name: 'etcd',
      module: 'go.etcd.io/etcd/server/v3',
      version: `v${facts.etcd}`,
      via: 'dependency',
      outputs: [{ name: 'etcd', dest: 'components', pkg: 'go.etcd.io/etcd/server/v3' }],
      cgo: false,
      ldflags: '-s -w',
    },
  ];
}

/**
 * flannel's main.go links every backend; the Tencent Cloud VPC one needs tencentcloud-sdk-go/tencentcloud/vpc,
 * which the Go module proxy refuses (403). Clusters here use the vxlan backend, so the bundle's flanneld leaves
 * that one backend out: its import and its requirement are the only lines removed.
 */
const TENCENT_VPC_IMPORT = /^\s*_ "github\.com\/flannel-io\/flannel\/pkg\/backend\/tencentvpc"\s*\n/m;
const TENCENT_VPC_REQUIRE = /^\s*github\.com\/tencentcloud\/tencentcloud-sdk-go\/tencentcloud\/vpc v\S+.*\n/m;

export function dropLine(text: string, line: RegExp, file: string): string {
  if (!line.test(text)) throw new Error(`${file}: no line matching ${line.source}`);
  return text.replace(line, '');
}

/** Everything else the bundle builds with Go (container runtime, CNI, add-ons, operators). */
export function componentBuilds(pins: GoPins, facts: KubernetesFacts): GoBuild[] {
  const containerd = 'github.com/containerd/containerd/v2';
  return [
    {
      // containerd's Makefile links the shim statically without cgo; containerd and ctr use cgo only for
      // the btrfs snapshotter, which needs btrfs headers and which nodes here do not use (overlayfs).
      name: 'containerd',
      module: containerd,
      version: pins.containerd,
      via: 'install',
      outputs: ['containerd', 'containerd-shim-runc-v2', 'ctr'].map((name) => ({
        name,
        dest: 'bin' as const,
        pkg: `${containerd}/cmd/${name}`,
      })),
      cgo: false,
      ldflags: ['-s -w', ...xflags(`${containerd}/version`, { Version: pins.containerd, Package: containerd })].join(
        ' ',
      ),
    },
    {
      name: 'crictl',
      module: 'sigs.k8s.io/cri-tools',
      version: pins.crictl,
      via: 'install',
      outputs: [{ name: 'crictl', dest: 'bin', pkg: 'sigs.k8s.io/cri-tools/cmd/crictl' }],
      cgo: false,
      ldflags: ['-s -w', ...xflags('sigs.k8s.io/cri-tools/pkg/version', { Version: pins.crictl })].join(' '),
    },
    {
      name: 'coredns',
      module: 'github.com/coredns/coredns',
      version: facts.coredns,
      via: 'install',
      outputs: [{ name: 'coredns', dest: 'components', pkg: 'github.com/coredns/coredns' }],
      cgo: false,
      ldflags: '-s -w',
    },
    {
      // flannel's Makefile enables cgo on amd64 (for its UDP backend) and links statically. Built without its
      // Tencent Cloud VPC backend, whose SDK module the Go module proxy does not serve (see dropFlannelTencentVpc).
      name: 'flanneld',
      module: 'github.com/flannel-io/flannel',
      version: pins.flannel,
      via: 'source',
      edits: {
        'go.mod': (text) => dropLine(text, TENCENT_VPC_REQUIRE, 'flannel go.mod'),
        'main.go': (text) => dropLine(text, TENCENT_VPC_IMPORT, 'flannel main.go'),
      },
      outputs: [{ name: 'flanneld', dest: 'components', pkg: '.' }],
      cgo: true,
      ldflags: [
        '-s -w',
        ...xflags('github.com/flannel-io/flannel/pkg/version', { Version: pins.flannel }),
        '-extldflags "-static"',
      ].join(' '),
    },
    {
      // flannel-io/cni-plugin is not served by the Go module proxy; its code began as this plugin of
      // containernetworking/plugins (removed there in v1.0), which is served.
      name: 'flannel-cni',
      module: 'github.com/containernetworking/plugins',
      version: pins.flannelCni,
      via: 'install',
      outputs: [
        { name: 'flannel', dest: 'components', pkg: 'github.com/containernetworking/plugins/plugins/meta/flannel' },
      ],
      cgo: false,
      ldflags: '-s -w',
    },
    {
      name: 'local-path-provisioner',
      module: 'github.com/rancher/local-path-provisioner',
      version: pins.localPath,
      via: 'install',
      outputs: [
        { name: 'local-path-provisioner', dest: 'components', pkg: 'github.com/rancher/local-path-provisioner' },
      ],
      cgo: false,
      ldflags: `-s -w -X main.VERSION=${pins.localPath}`,
    },
    {
      // Upstream's image builds it with cgo only for its FIPS build tag; the plain build is static.
      name: 'kuberay-operator',
      module: 'github.com/ray-project/kuberay/ray-operator',
      version: pins.kuberay,
      via: 'install',
      outputs: [{ name: 'kuberay-operator', dest: 'components', pkg: 'github.com/ray-project/kuberay/ray-operator' }],
      cgo: false,
      ldflags: '-s -w',
    },
    {
      name: 'kustomize',
      module: 'sigs.k8s.io/kustomize/kustomize/v5',
      version: facts.kustomize,
      via: 'install',
      outputs: [{ name: 'kustomize', dest: 'components', pkg: 'sigs.k8s.io/kustomize/kustomize/v5' }],
      cgo: false,
      ldflags: '-s -w',
    },
    argocdBuild(pins),
  ];
}

const GITOPS_ENGINE = 'github.com/argoproj/argo-cd/gitops-engine';

/**
 * Argo CD v3.3+ replaces its gitops-engine with the in-repo ./gitops-engine, a nested module the argo-cd/v3 module
 * zip leaves out, and the proxy does not serve that module at the version the release names. It does serve a later
 * pseudo-version of the same nested module (versions.yaml `argocdGitopsEngine`), API-compatible with the release:
 * the replace points there instead. Everything else is the pinned release's own source and go.sum.
 */
export function argocdGoMod(goMod: string, gitopsEngine: string): string {
  const local = new RegExp(`^replace ${GITOPS_ENGINE.replace(/[.]/g, '\\.')} => \\./gitops-engine[ \\t]*$`, 'm');
  if (!local.test(goMod))
    throw new Error(`github.com/argoproj/argo-cd/v3 go.mod: no replace of ${GITOPS_ENGINE} by ./gitops-engine`);
  return goMod.replace(local, `replace ${GITOPS_ENGINE} => ${GITOPS_ENGINE} ${gitopsEngine}`);
}

/** The one argocd binary every Argo CD component runs (server, repo-server, controller, ... by argv[0]). */
export function argocdBuild(pins: Pick<GoPins, 'argocd' | 'argocdGitopsEngine'>): GoBuild {
  return {
    name: 'argocd',
    module: 'github.com/argoproj/argo-cd/v3',
    version: pins.argocd,
    via: 'source',
    edits: { 'go.mod': (text) => argocdGoMod(text, pins.argocdGitopsEngine) },
    outputs: [{ name: 'argocd', dest: 'components', pkg: './cmd' }],
    cgo: false,
    ldflags: `-s -w -X github.com/argoproj/argo-cd/v3/common.version=${pins.argocd.replace(/^v/, '')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// How to build: commands (pure), then the step that runs them.

export interface BuildPaths {
  /** The outputs go to <root>/<dest>/<name>; the bundle, or a cache folder of the test harness. */
  root: string;
  /** Scratch folder of this build (module copy, throwaway module, GOBIN). */
  work: string;
  /** Where the go command leaves the binaries before they move into the bundle. */
  out: string;
  stamp: string;
  lock: string;
}

export function buildPaths(root: string, name: string): BuildPaths {
  const work = join(root, 'build', `${name}.work`);
  return {
    root,
    work,
    out: join(work, 'out'),
    stamp: join(root, 'build', `${name}.json`),
    lock: join(root, 'build', `${name}.lock`),
  };
}

/** The file go names a binary after: the package path's last element, skipping a /vN major suffix. */
export function goBinaryName(pkg: string, module: string): string {
  const elems = (pkg === '.' ? module : pkg).split('/').filter((e) => e !== '' && e !== '.');
  const last = elems.at(-1) ?? '';
  return /^v\d+$/.test(last) && elems.length > 1 ? (elems.at(-2) ?? last) : last;
}

export function goEnv(b: GoBuild): Record<string, string> {
  // Two cores are shared with everything else on the machine: cap build parallelism. GOWORK=off because the
  // kubernetes module ships a go.work that names staging folders the module zip does not contain.
  const env: Record<string, string> = {
    GOWORK: 'off',
    GOFLAGS: `${b.via === 'install' ? '' : '-mod=mod '}-p=2 -buildvcs=false`,
    CGO_ENABLED: b.cgo ? '1' : '0',
  };
  if (b.toolchain) env.GOTOOLCHAIN = b.toolchain;
  return env;
}

/** The folder the go command runs in: the module copy of a `source` build, else the scratch folder. */
export function goWorkDir(b: GoBuild, paths: BuildPaths): string {
  return b.via === 'source' ? join(paths.work, 'src') : paths.work;
}

/** argv of the one go command that builds every output of `b`. */
export function goCommand(b: GoBuild, paths: BuildPaths): string[] {
  const flags = ['-trimpath', '-ldflags', b.ldflags, ...(b.tags?.length ? ['-tags', b.tags.join(',')] : [])];
  const go = ['go', '-C', goWorkDir(b, paths)];
  if (b.via === 'install') return [...go, 'install', ...flags, ...b.outputs.map((o) => `${o.pkg}@${b.version}`)];
  return [...go, 'build', ...flags, '-o', `${paths.out}/`, ...b.outputs.map((o) => o.pkg)];
}

/** go.mod of the throwaway module a `dependency` build compiles in. */
export function throwawayGoMod(b: GoBuild): string {
  return `module tokenize-wiki/bundle-${b.name}\n\ngo 1.24\n\nrequire ${b.module} ${b.version}\n`;
}

export interface StepOptions {
  /** Receives one line per build phase, so a first run that takes many minutes says what it does. */
  log?: (line: string) => void;
  /** How long to wait for another process's build of the same thing. */
  lockTimeoutMs?: number;
}

/** Reads a build's stamp; undefined unless it matches `b` and every file it lists is present. */
export async function readStamp(host: Host, b: GoBuild, paths: BuildPaths): Promise<BuildStamp | undefined> {
  const text = await host.readFile(paths.stamp);
  if (text === undefined) return undefined;
  let parsed;
  try {
    parsed = BuildStamp.safeParse(JSON.parse(text));
  } catch {
    return undefined;
  }
  if (!parsed.success || parsed.data.module !== b.module || parsed.data.version !== b.version) return undefined;
  for (const f of parsed.data.files) if (!(await host.exists(join(paths.root, f)))) return undefined;
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function goVersion(host: Host, b: GoBuild): Promise<string> {
  const r = await host.probe(
    b.toolchain ? ['env', `GOTOOLCHAIN=${b.toolchain}`, 'go', 'env', 'GOVERSION'] : ['go', 'env', 'GOVERSION'],
  );
  return r.stdout.trim() || 'unknown';
}

/** Runs one Go build into the bundle and writes its stamp. Call under the build's lock. */
async function build(host: Host, b: GoBuild, paths: BuildPaths, log: (line: string) => void): Promise<BuildStamp> {
  const started = Date.now();
  await host.exec(['rm', '-rf', paths.work]);
  await host.exec(['mkdir', '-p', paths.out, ...new Set(b.outputs.map((o) => join(paths.root, o.dest)))]);
  const cwd = goWorkDir(b, paths);
  if (b.via === 'source') {
    const dir = await goModDir(host, b.module, b.version, { toolchain: b.toolchain });
    await host.exec(['cp', '-r', dir, cwd]);
    await host.exec(['chmod', '-R', 'u+w', cwd]); // the module cache is read-only
    for (const [file, edit] of Object.entries(b.edits ?? {})) {
      // A dry run has no copy to read: the module cache holds the same file.
      const text =
        (await host.readFile(join(cwd, file))) ?? (host.dryRun ? await host.readFile(join(dir, file)) : undefined);
      if (text === undefined) throw new Error(`${b.module}@${b.version}: ${file} missing in ${cwd}`);
      await host.writeFile(join(cwd, file), edit(text));
    }
  } else if (b.via === 'dependency') {
    await host.writeFile(join(cwd, 'go.mod'), throwawayGoMod(b));
  }
  log(`building ${b.name} (${b.module}@${b.version}: ${b.outputs.map((o) => o.name).join(', ')})`);
  await host.exec(goCommand(b, paths), { env: { ...goEnv(b), ...(b.via === 'install' ? { GOBIN: paths.out } : {}) } });
  const files: string[] = [];
  for (const o of b.outputs) {
    const target = join(o.dest, o.name);
    await host.exec(['mv', '-f', join(paths.out, goBinaryName(o.pkg, b.module)), join(paths.root, target)]);
    files.push(target);
  }
  await host.exec(['rm', '-rf', paths.work]);
  const stamp: BuildStamp = {
    name: b.name,
    module: b.module,
    version: b.version,
    seconds: Math.round((Date.now() - started) / 1000),
    go: await goVersion(host, b),
    files,
  };
  await host.writeFile(paths.stamp, `${JSON.stringify(stamp, null, 2)}\n`);
  log(`built ${b.name} in ${stamp.seconds}s`);
  return stamp;
}

/** The step that makes one Go build's binaries present under `root`. */
export function goBuildStep(b: GoBuild, root: string, opts: StepOptions = {}): Step {
  const paths = buildPaths(root, b.name);
  const log = opts.log ?? (() => {});
  return {
    name: `go-build ${b.name}`,
    goal: `${b.outputs.map((o) => `${o.dest}/${o.name}`).join(', ')} built from ${b.module}@${b.version}`,
    check: async (host) => (await readStamp(host, b, paths)) !== undefined,
    apply: async (host) => {
      if (host.dryRun) {
        await build(host, b, paths, log);
        return;
      }
      await withLock(paths.lock, opts.lockTimeoutMs ?? 120 * 60_000, async () => {
        // Another process may have finished it while this one waited for the lock.
        if ((await readStamp(host, b, paths)) === undefined) await build(host, b, paths, log);
      });
    },
  };
}

/**
 * Builds `b` under `root` unless its stamp says it is there; for callers outside a script (the test harness).
 * `built` says whether this call waited for a build (its own or another process's).
 */
export async function ensureGoBuild(
  host: Host,
  b: GoBuild,
  root: string,
  opts: StepOptions = {},
): Promise<{ stamp: BuildStamp; built: boolean }> {
  const paths = buildPaths(root, b.name);
  const step = goBuildStep(b, root, opts);
  const built = !(await step.check(host));
  if (built) await step.apply(host);
  const stamp = await readStamp(host, b, paths);
  if (!stamp) throw new Error(`${b.name}: ${paths.stamp} missing or incomplete after the build`);
  return { stamp, built };
}

/** Reads the facts of the pinned k8s.io/kubernetes module (downloaded through the proxy, not built). */
export async function readKubernetesFacts(host: Host, kubernetes: string): Promise<KubernetesFacts> {
  const dir = await goModDir(host, 'k8s.io/kubernetes', `v${kubernetes}`);
  const read = async (rel: string): Promise<string> => {
    const text = await host.readFile(join(dir, rel));
    if (text === undefined) throw new Error(`k8s.io/kubernetes@v${kubernetes}: ${rel} not found in ${dir}`);
    return text;
  };
  return kubernetesFacts({
    etcdSh: await read('hack/lib/etcd.sh'),
    kubeadmConstants: await read('cmd/kubeadm/app/constants/constants.go'),
    goMod: await read('go.mod'),
  });
}

/** The flannel CNI plugin image tag the pinned flannel release's manifest names. */
export async function readFlannelCniImageTag(host: Host, flannel: string): Promise<string> {
  const file = join(await goModDir(host, 'github.com/flannel-io/flannel', flannel), 'Documentation/kube-flannel.yml');
  const text = await host.readFile(file);
  if (text === undefined) throw new Error(`${file} not found`);
  return flannelCniImageTag(text);
}

/**
 * SeaweedFS `weed`, for the test harness's S3 server and the object-store image. `go install` refuses the module
 * (its go.mod has replace directives), so it is built in a copy of the module.
 */
export function seaweedBuild(version: string): GoBuild {
  return {
    name: 'weed',
    module: 'github.com/seaweedfs/seaweedfs',
    version,
    via: 'source',
    outputs: [{ name: 'weed', dest: '.', pkg: './weed' }],
    cgo: false,
    ldflags: '-s -w',
  };
}

/** The harness's cache folder of one SeaweedFS version; the bundle copies its `weed` from there. */
export function seaweedRoot(cache: string, version: string): string {
  return join(cache, `seaweedfs-${version}`);
}

/** pause.c argv: the flags of the kubernetes module's build/pause/Makefile, with the version kubeadm expects. */
export function pauseCommand(source: string, output: string, pause: string): string[] {
  return ['gcc', '-Os', '-Wall', '-Werror', '-static', `-DVERSION=v${pause}`, '-o', output, source];
}

/** The pause binary (C, not Go), from the pinned k8s.io/kubernetes module. */
export function pauseStep(kubernetes: string, pause: string, bundle: string): Step {
  const rel = join('components', 'pause');
  const stampFile = join(bundle, 'build', 'pause.json');
  const stamp = (seconds: number): BuildStamp => ({
    name: 'pause',
    module: 'k8s.io/kubernetes',
    version: `v${kubernetes}`,
    seconds,
    go: 'gcc',
    files: [rel],
  });
  return {
    name: 'gcc pause',
    goal: `components/pause ${pause} built from k8s.io/kubernetes@v${kubernetes} build/pause/linux/pause.c`,
    check: async (host) => {
      const s = BuildStamp.safeParse(safeJson((await host.readFile(stampFile)) ?? ''));
      return s.success && s.data.version === `v${kubernetes}` && (await host.exists(join(bundle, rel)));
    },
    apply: async (host) => {
      const started = Date.now();
      const dir = await goModDir(host, 'k8s.io/kubernetes', `v${kubernetes}`);
      await host.exec(['mkdir', '-p', join(bundle, 'components'), join(bundle, 'build')]);
      await host.exec(pauseCommand(join(dir, 'build/pause/linux/pause.c'), join(bundle, rel), pause));
      await host.writeFile(stampFile, `${JSON.stringify(stamp(Math.round((Date.now() - started) / 1000)), null, 2)}\n`);
    },
  };
}

/** Copies a binary built elsewhere (the harness's `weed`) into the bundle. */
export function copyStep(name: string, from: string, to: string): Step {
  return {
    name: `copy ${name}`,
    goal: `${to} is a copy of ${from}`,
    check: async (host) => (await host.probe(['cmp', '-s', from, to])).exitCode === 0,
    apply: async (host) => {
      await host.exec(['mkdir', '-p', dirname(to)]);
      await host.exec(['cp', '-f', from, to]);
    },
  };
}
