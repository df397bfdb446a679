// The container images of the air-gapped bundle: one OCI archive per image under <bundle>/images/,
// each carrying the exact name the manifests and kubeadm use, so that `ctr -n k8s.io images import`
// on a node makes it available under that name and `imagePullPolicy: IfNotPresent` finds it.
// Built with buildah (rootful, chroot isolation: the build host has no systemd and cgroup v1) from
//  - stand-ins for upstream bases (standins.ts),
//  - images/*/Dockerfile, unchanged, on those stand-ins,
//  - component binaries built elsewhere into <bundle>/components/, wrapped as "binary + entrypoint".
import { createHash } from 'node:crypto';
import { existsSync, openSync, readSync, closeSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Host } from '../host.js';
import { runSteps, type Logger, type Step } from '../run.js';
import { LOCAL_BASES, standIns, type BuildContext, type StandIn } from './standins.js';

/** Default registries as containerd's CRI resolves short names (docker.io/library/...). */
export function normalizeRef(ref: string): string {
  const first = ref.split('/')[0] ?? '';
  const hasRegistry = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const full = hasRegistry ? ref : ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
  return /:[^/]+$/.test(full) || full.includes('@') ? full : `${full}:latest`;
}

export function splitRef(ref: string): { repository: string; tag: string } {
  const at = ref.lastIndexOf(':');
  if (at < 0 || ref.slice(at).includes('/')) throw new UsageError(`image ${ref}: no tag`);
  return { repository: ref.slice(0, at), tag: ref.slice(at + 1) };
}

/** registry.k8s.io/kube-apiserver:v1.36.3 -> registry.k8s.io_kube-apiserver_v1.36.3.oci.tar */
export function archiveName(ref: string): string {
  return `${ref.replace(/[/:@]/g, '_')}.oci.tar`;
}

const OciIndex = z.looseObject({
  schemaVersion: z.literal(2),
  manifests: z
    .array(z.looseObject({ digest: z.string(), annotations: z.record(z.string(), z.string()).optional() }))
    .min(1),
});

/**
 * The OCI layout's index.json with the image name on every manifest: containerd's import takes
 * `io.containerd.image.name` as the image name as it is (client/import.go, imageName), while the
 * OCI `org.opencontainers.image.ref.name` alone only names an image under `--base-name`.
 */
export function annotateIndex(indexJson: string, ref: string, file = 'index.json'): string {
  const parsed = OciIndex.safeParse(JSON.parse(indexJson));
  if (!parsed.success)
    throw new Error(`${file}: not an OCI image index (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  const index = parsed.data;
  for (const m of index.manifests) {
    m.annotations = { ...m.annotations, 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref };
  }
  return `${JSON.stringify(index)}\n`;
}

/** True when an ELF executable has no program interpreter (statically linked): it can run FROM scratch. */
export function isStaticElf(head: Buffer): boolean {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
  const phoff = Number(head.readBigUInt64LE(0x20));
  const phentsize = head.readUInt16LE(0x36);
  const phnum = head.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > head.length) return false; // headers beyond what was read: unknown, treat as dynamic
    if (head.readUInt32LE(at) === 3) return false; // PT_INTERP
  }
  return true;
}

function readHead(file: string, bytes = 65536): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** An image that wraps binaries from <bundle>/components/ ("binary + entrypoint (+ base)"). */
export interface ComponentRecipe {
  repository: string;
  /** `scratch` or a stand-in reference built first; only the Debian ones (LOCAL_BASES) take dynamic binaries. */
  base: string;
  files: readonly { component: string; to: string }[];
  entrypoint?: readonly string[];
  user?: string;
  /** Shell lines run in the image after the copy (bases with a shell only). */
  setup?: readonly string[];
  env?: Readonly<Record<string, string>>;
  workdir?: string;
}

const KUBE_BINARY = (name: string): ComponentRecipe => ({
  repository: `registry.k8s.io/${name}`,
  base: name === 'kube-proxy' ? 'localhost/tokenize-wiki/base-iptables:bookworm' : 'scratch',
  files: [{ component: name, to: `/usr/local/bin/${name}` }],
});

/** How each component image is made; tags come from the manifests and kubeadm, never from here. */
/** busyboxRef: the busybox the tree pins (local-path's helper pod), the small base with a shell. */
export function componentRecipes(busyboxRef: string): ComponentRecipe[] {
  const argocdCommands = [
    'argocd-server',
    'argocd-repo-server',
    'argocd-cmp-server',
    'argocd-application-controller',
    'argocd-applicationset-controller',
    'argocd-notifications',
    'argocd-dex',
    'argocd-k8s-auth',
    'argocd-commit-server',
  ];
  return [
    ...['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'].map(KUBE_BINARY),
    // kubeadm's etcd static Pod runs `etcd` and probes it over HTTP: etcdctl is not needed.
    { repository: 'registry.k8s.io/etcd', base: 'scratch', files: [{ component: 'etcd', to: '/usr/local/bin/etcd' }] },
    // kubeadm's CoreDNS Deployment passes only args: the entrypoint is the binary, as upstream.
    {
      repository: 'registry.k8s.io/coredns/coredns',
      base: 'scratch',
      files: [{ component: 'coredns', to: '/coredns' }],
      entrypoint: ['/coredns'],
    },
    {
      repository: 'registry.k8s.io/pause',
      base: 'scratch',
      files: [{ component: 'pause', to: '/pause' }],
      entrypoint: ['/pause'],
      user: '65535:65535',
    },
    // kube-flannel.yml runs /opt/bin/flanneld and /opt/bin/install-conf in the flannel image, `cp` in the plugin image.
    {
      repository: 'ghcr.io/flannel-io/flannel',
      base: 'localhost/tokenize-wiki/base-iptables:bookworm',
      files: [{ component: 'flanneld', to: '/opt/bin/flanneld' }],
      entrypoint: ['/opt/bin/flanneld'],
      // kube-flannel.yml's install-cni runs `/opt/bin/install-conf SRC DEST`: upstream's image ships it. It copies
      // the CNI config in place by rename, so kubelet never reads a half-written file.
      setup: [
        "printf '%s\\n' '#!/bin/sh' 'set -eu' 'cp -f \"$1\" \"$2.tmp\"' 'mv -f \"$2.tmp\" \"$2\"' > /opt/bin/install-conf",
        'chmod 0755 /opt/bin/install-conf',
      ],
    },
    {
      repository: 'ghcr.io/flannel-io/flannel-cni-plugin',
      base: busyboxRef,
      files: [{ component: 'flannel', to: '/flannel' }],
    },
    {
      repository: 'docker.io/rancher/local-path-provisioner',
      base: busyboxRef,
      files: [{ component: 'local-path-provisioner', to: '/usr/bin/local-path-provisioner' }],
      entrypoint: ['local-path-provisioner'],
    },
    {
      repository: 'quay.io/kuberay/operator',
      base: 'scratch',
      files: [{ component: 'kuberay-operator', to: '/manager' }],
      entrypoint: ['/manager'],
      user: '65532:65532',
    },
    // infrastructure/monitoring passes only args; upstream runs it as nobody from /pushgateway.
    {
      repository: 'quay.io/prometheus/pushgateway',
      base: busyboxRef,
      files: [{ component: 'pushgateway', to: '/bin/pushgateway' }],
      entrypoint: ['/bin/pushgateway'],
      user: '65534',
      setup: ['mkdir -p /pushgateway', 'chown 65534:65534 /pushgateway'],
    },
    // infrastructure/object-store runs /usr/bin/weed, its lifecycle CronJob /bin/sh.
    {
      repository: 'docker.io/chrislusf/seaweedfs',
      base: busyboxRef,
      files: [{ component: 'weed', to: '/usr/bin/weed' }],
      entrypoint: ['/usr/bin/weed'],
    },
    {
      repository: 'quay.io/argoproj/argocd',
      base: 'localhost/tokenize-wiki/base-git:bookworm',
      files: [
        { component: 'argocd', to: '/usr/local/bin/argocd' },
        { component: 'kustomize', to: '/usr/local/bin/kustomize' },
      ],
      user: '999',
      // Upstream's Dockerfile (argo-cd v3.5.7): tini as entrypoint (the repo server forks git and kustomize),
      // the gpg and git-verify wrappers the repo server calls at start (it exits without them), and the
      // /app/config folders its ConfigMaps are mounted over. The wrappers are written here: run the tool,
      // print its stderr with its stdout, and count exit 1 (no key, no signature) as success.
      entrypoint: ['/usr/bin/tini', '--'],
      env: { USER: 'argocd' },
      workdir: '/home/argocd',
      setup: [
        'groupadd --gid 999 argocd',
        'useradd --uid 999 --gid 999 --create-home --home-dir /home/argocd --shell /bin/bash argocd',
        ...argocdCommands.map((c) => `ln -s argocd /usr/local/bin/${c}`),
        ...[
          ['gpg-wrapper.sh', 'gpg "$@"'],
          [
            'git-verify-wrapper.sh',
            'if git describe --exact-match "$1" >/dev/null 2>&1; then git verify-tag "$1"; else git verify-commit "$1"; fi',
          ],
        ].map(
          ([file, run]) =>
            `printf '%s\\n' '#!/bin/sh' 'out=$(${run} 2>&1); rc=$?' 'if [ $rc -gt 1 ]; then echo "$out" >&2; exit $rc; fi' 'echo "$out"' > /usr/local/bin/${file} && chmod 0755 /usr/local/bin/${file}`,
        ),
        'mkdir -p /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys',
        'touch /app/config/ssh/ssh_known_hosts && ln -sf /app/config/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts',
        'chown 999 /app/config/gpg/keys && chmod 0700 /app/config/gpg/keys',
      ],
    },
  ];
}

/** One image of the bundle and how it is made, or why it cannot be yet. */
export type ImagePlan =
  | { ref: string; kind: 'standin'; standIn: StandIn; tag: string; usedBy: string[] }
  | { ref: string; kind: 'dockerfile'; dockerfile: string; buildArgs: Record<string, string>; usedBy: string[] }
  | { ref: string; kind: 'component'; recipe: ComponentRecipe; usedBy: string[] }
  | { ref: string; kind: 'missing'; reason: string; usedBy: string[] };

const OverlayImages = z.looseObject({
  images: z
    .array(z.looseObject({ name: z.string(), newName: z.string().optional(), newTag: z.string().optional() }))
    .optional(),
});

/** `image:` values of every YAML document under the given folders (manifests, vendored upstream ones). */
export function manifestImages(repoRoot: string, folders: readonly string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (image: string, file: string): void => {
    const ref = normalizeRef(image);
    found.set(ref, [...new Set([...(found.get(ref) ?? []), file])]);
  };
  const visit = (node: unknown, file: string): void => {
    if (Array.isArray(node)) node.forEach((n) => visit(n, file));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        // Our own images are kustomize names (no tag) replaced by an overlay: the overlay gives their refs.
        if (k === 'image' && typeof v === 'string' && /:[^/]+$/.test(v)) add(v, file);
        else if (typeof v === 'string' && /^\s*image:/m.test(v)) {
          // A manifest inside a ConfigMap value (local-path's helperPod.yaml).
          for (const doc of parseAllDocuments(v)) visit(doc.toJS(), file);
        } else visit(v, file);
      }
    }
  };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) {
        for (const doc of parseAllDocuments(readFileSync(p, 'utf8'))) {
          const js: unknown = doc.toJS();
          visit(js, relative(repoRoot, p));
          // A kustomization's `images:` sets the tag of an untagged `image:` (KubeRay's config/default).
          const images = /^kustomization\.ya?ml$/.test(e.name) ? OverlayImages.safeParse(js).data?.images : undefined;
          for (const i of images ?? []) if (i.newTag) add(`${i.newName ?? i.name}:${i.newTag}`, relative(repoRoot, p));
        }
      }
    }
  };
  for (const f of folders) if (existsSync(join(repoRoot, f))) walk(join(repoRoot, f));
  return found;
}

/** The `FROM` bases of a Dockerfile (global ARG defaults overridden by buildArgs), stages excluded. */
export function dockerfileBases(text: string, buildArgs: Record<string, string>): string[] {
  const args: Record<string, string> = {};
  const stages = new Set<string>();
  const bases: string[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    const arg = /^ARG\s+(\w+)(?:=(\S*))?$/i.exec(line);
    if (arg?.[1] && bases.length === 0 && stages.size === 0) args[arg[1]] = buildArgs[arg[1]] ?? arg[2] ?? '';
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!from?.[1]) continue;
    const image = from[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => args[a ?? b ?? ''] ?? '');
    if (!stages.has(image)) bases.push(image);
    if (from[2]) stages.add(from[2]);
  }
  return [...new Set(bases)];
}

/** The reference an overlay gives one of our kustomize image names. */
export function overlayRef(kustomizationText: string, name: string, file: string): string {
  const parsed = OverlayImages.safeParse(parse(kustomizationText));
  if (!parsed.success) throw new UsageError(`${file}: key images: expected a list of {name, newName, newTag}`);
  const entry = parsed.data.images?.find((i) => i.name === name);
  if (!entry?.newName || !entry.newTag)
    throw new UsageError(`${file}: images: no entry with newName and newTag for ${name}`);
  return normalizeRef(`${entry.newName}:${entry.newTag}`);
}

export interface PlanInputs {
  /** Our images: kustomize name -> Dockerfile and build args (scripts/build-images.mts imageBuilds). */
  ours: readonly { name: string; dockerfile: string; buildArgs: Record<string, string> }[];
  /** The overlay whose `images:` name our images. */
  overlayFile: string;
  overlayText: string;
  dockerfileText: (dockerfile: string) => string;
  /** image ref -> files of the tree that use it. */
  manifestRefs: Map<string, string[]>;
  /** `kubeadm config images list` output lines, or undefined when kubeadm is not built yet. */
  kubeadmImages: readonly string[] | undefined;
  standIns: readonly StandIn[];
  recipes: readonly ComponentRecipe[];
  /** Files present in <bundle>/components/. */
  components: ReadonlySet<string>;
  /** Those of them that are dynamically linked ELF files. */
  dynamicComponents: ReadonlySet<string>;
}

/** Only the Debian bases (LOCAL_BASES) have a C library: on scratch and busybox a binary must be static. */
export function needsStatic(recipe: ComponentRecipe): boolean {
  return recipe.base === 'scratch' || !(splitRef(recipe.base).repository in LOCAL_BASES);
}

/**
 * Every image the bundle needs and how each is made (pure: the caller reads the files). Order is build
 * order: stand-ins, then local bases, then Dockerfile images and component images.
 */
export function planImages(inp: PlanInputs): ImagePlan[] {
  const wanted = new Map<string, Set<string>>();
  const want = (ref: string, by: string): void => void wanted.set(ref, (wanted.get(ref) ?? new Set()).add(by));
  for (const o of inp.ours)
    for (const base of dockerfileBases(inp.dockerfileText(o.dockerfile), o.buildArgs))
      want(normalizeRef(base), o.dockerfile);
  const ourRefs = inp.ours.map((o) => overlayRef(inp.overlayText, o.name, inp.overlayFile));
  const ourRepos = new Set(ourRefs.map((ref) => splitRef(ref).repository));
  // Other overlays name our images with their own tags: only the chosen overlay's are built.
  for (const [ref, files] of inp.manifestRefs)
    if (!ourRepos.has(splitRef(ref).repository)) for (const f of files) want(ref, f);
  for (const ref of inp.kubeadmImages ?? []) want(normalizeRef(ref), 'kubeadm config images list');

  const standInByRepo = new Map<string, StandIn>([
    ...inp.standIns.map((s) => [s.repository, s] as const),
    ...Object.entries(LOCAL_BASES),
  ]);
  const recipeByRepo = new Map(inp.recipes.map((r) => [r.repository, r]));
  const components: ImagePlan[] = [];
  const missing: ImagePlan[] = [];
  for (const [ref, by] of [...wanted]) {
    const recipe = recipeByRepo.get(splitRef(ref).repository);
    if (!recipe || standInByRepo.has(recipe.repository)) continue;
    const usedBy = [...by].sort();
    const absent = recipe.files.filter((f) => !inp.components.has(f.component)).map((f) => `components/${f.component}`);
    const dynamic = needsStatic(recipe)
      ? recipe.files.filter((f) => inp.dynamicComponents.has(f.component)).map((f) => `components/${f.component}`)
      : [];
    if (absent.length > 0)
      missing.push({ ref, kind: 'missing', reason: `missing input: ${absent.join(', ')} not built yet`, usedBy });
    else if (dynamic.length > 0) {
      const reason = `${dynamic.join(', ')}: dynamically linked, but FROM ${recipe.base} has no C library (build with CGO_ENABLED=0 or -static)`;
      missing.push({ ref, kind: 'missing', reason, usedBy });
    } else {
      components.push({ ref, kind: 'component', recipe, usedBy });
      if (recipe.base !== 'scratch') want(recipe.base, `base of ${recipe.repository}`);
    }
  }
  const standInPlans: ImagePlan[] = [];
  for (const [ref, by] of wanted) {
    const { repository, tag } = splitRef(ref);
    const usedBy = [...by].sort();
    const standIn = standInByRepo.get(repository);
    if (standIn) standInPlans.push({ ref, kind: 'standin', standIn, tag, usedBy });
    else if (!recipeByRepo.has(repository))
      missing.push({ ref, kind: 'missing', reason: 'no recipe for this image', usedBy });
  }
  // Local bases last among the stand-ins: nothing upstream is built on them.
  standInPlans.sort((a, b) => Number(a.ref.startsWith('localhost/')) - Number(b.ref.startsWith('localhost/')));
  const ours: ImagePlan[] = inp.ours.map((o, i) => ({
    ref: ourRefs[i] ?? '',
    kind: 'dockerfile',
    dockerfile: o.dockerfile,
    buildArgs: o.buildArgs,
    usedBy: [inp.overlayFile],
  }));
  if (!inp.kubeadmImages) {
    missing.push({
      ref: 'registry.k8s.io/*',
      kind: 'missing',
      reason: 'missing input: bin/kubeadm not built yet (`kubeadm config images list` names the control-plane images)',
      usedBy: [],
    });
  }
  const wantedRepos = new Set([...wanted.keys()].map((ref) => splitRef(ref).repository));
  for (const r of inp.recipes) {
    if (!wantedRepos.has(r.repository) && !r.repository.startsWith('registry.k8s.io/')) {
      missing.push({
        ref: `${r.repository}:*`,
        kind: 'missing',
        reason: 'no manifest in the tree names this image (upstream manifest not vendored yet?)',
        usedBy: [],
      });
    }
  }
  return [...standInPlans, ...ours, ...components, ...missing];
}

/** Where the images step keeps its inputs and work (under the cache) and writes archives (the bundle). */
export interface ImageDirs {
  /** <cache>/bundle/<kubernetes>/ */
  bundle: string;
  /** <cache>/bundle/work/: buildah storage, root filesystems, downloads; shared by bundle versions. */
  work: string;
}

/** The Step list that builds every buildable image and writes its archive; missing ones are reported. */
export class BundleImages implements BuildContext {
  constructor(
    readonly host: Host,
    private readonly dirs: ImageDirs,
    private readonly repoRoot: string,
    private readonly log: Logger,
  ) {}

  buildah(args: readonly string[]): string[] {
    const w = this.dirs.work;
    return [
      'buildah',
      '--root',
      join(w, 'buildah/storage'),
      '--runroot',
      join(w, 'buildah/run'),
      '--storage-driver',
      'overlay',
      ...args,
    ];
  }

  private async cached(path: string, make: (tmp: string) => Promise<void>): Promise<string> {
    if (await this.host.exists(path)) return path;
    const tmp = `${path}.tmp`;
    await this.host.exec(['rm', '-rf', tmp]);
    await make(tmp);
    await this.host.exec(['mv', tmp, path]);
    return path;
  }

  minbase(suite: string): Promise<string> {
    const dir = join(this.dirs.work, 'rootfs');
    return this.cached(join(dir, `${suite}-minbase.tar`), async (tmp) => {
      const root = `${tmp}.d`;
      await this.host.exec(['mkdir', '-p', dir]);
      await this.host.exec(['rm', '-rf', root]);
      this.log.info(`debootstrap --variant=minbase ${suite} (about a minute or two)`);
      await this.host.exec(['debootstrap', '--variant=minbase', suite, root, 'http://deb.debian.org/debian']);
      // As Debian's own slim images: no package lists, no apt caches.
      await this.host.exec([
        'sh',
        '-ec',
        `rm -rf ${root}/var/lib/apt/lists/* ${root}/var/cache/apt/*.bin ${root}/var/cache/apt/archives/*.deb`,
      ]);
      await this.host.exec(['tar', '--numeric-owner', '--xattrs', '-C', root, '-cf', tmp, '.']);
      await this.host.exec(['rm', '-rf', root]);
    });
  }

  npmPackage(spec: string): Promise<string> {
    const dir = join(this.dirs.work, 'downloads/npm', spec.replace(/[/@]/g, '_'));
    return this.cached(dir, async (tmp) => {
      await this.host.exec(['mkdir', '-p', tmp]);
      const r = await this.host.exec(['npm', 'pack', '--silent', '--pack-destination', tmp, spec]);
      const tgz = r.stdout.trim().split('\n').at(-1) ?? '';
      await this.host.exec(['tar', '-C', tmp, '-xzf', join(tmp, tgz)]);
      await this.host.exec(['rm', '-f', join(tmp, tgz)]);
    });
  }

  wheelhouse(requirement: string): Promise<string> {
    const dir = join(this.dirs.work, 'downloads/wheels', requirement.replace(/[^A-Za-z0-9.=_-]/g, '_'));
    return this.cached(dir, async (tmp) => {
      // The build host's python3 is Debian's, the stand-in's too: the same wheels fit.
      await this.host.exec(
        ['python3', '-m', 'pip', 'download', '--quiet', '--only-binary=:all:', '--dest', tmp, requirement],
        { env: { PIP_FIND_LINKS: '' } },
      );
    });
  }

  debPackage(name: string): Promise<string> {
    const dir = join(this.dirs.work, 'downloads/deb', name);
    return this.cached(dir, async (tmp) => {
      await this.host.exec(['mkdir', '-p', tmp]);
      await this.host.exec([
        'sh',
        '-ec',
        `cd ${tmp} && apt-get download ${name} && dpkg-deb -x ${name}_*.deb . && rm ${name}_*.deb`,
      ]);
    });
  }

  /** Label of the recipe that made an image (empty when the image is absent). */
  private async recipeLabel(ref: string): Promise<string> {
    const r = await this.host.probe(
      this.buildah([
        'inspect',
        '--type',
        'image',
        '--format',
        '{{index .OCIv1.Config.Labels "io.tokenize-wiki.recipe"}}',
        ref,
      ]),
    );
    return r.exitCode === 0 ? r.stdout.trim() : '';
  }

  private async imageId(ref: string): Promise<string> {
    const r = await this.host.probe(this.buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', ref]));
    return r.exitCode === 0 ? r.stdout.trim() : '';
  }

  private async commit(name: string, ref: string, recipe: string, note: string): Promise<void> {
    await this.host.exec(
      this.buildah([
        'config',
        '--label',
        `io.tokenize-wiki.recipe=${recipe}`,
        '--label',
        `io.tokenize-wiki.note=${note}`,
        name,
      ]),
    );
    await this.host.exec(this.buildah(['commit', '--rm', name, ref]));
  }

  private async freshContainer(name: string): Promise<void> {
    await this.host.probe(this.buildah(['rm', name]));
  }

  /**
   * A digest of everything that decides the image: recipe code, inputs, and file contents. Recipe code is the source
   * file that holds it, not `Function.toString()`: tsx and vitest compile a function to different text, so a bundle
   * built from the command line looked stale to the e2e suite (and back), which rebuilt it every time.
   */
  recipeDigest(plan: ImagePlan): string {
    const h = createHash('sha256').update(plan.ref);
    const recipeSource = (file: string): Buffer => readFileSync(join(this.repoRoot, 'scripts/lib/bundle', file));
    if (plan.kind === 'standin') h.update(plan.standIn.note).update(recipeSource('standins.ts'));
    if (plan.kind === 'component') {
      h.update(JSON.stringify(plan.recipe));
      for (const f of plan.recipe.files) h.update(readFileSync(join(this.dirs.bundle, 'components', f.component)));
    }
    if (plan.kind === 'dockerfile') {
      h.update(recipeSource('images.ts'))
        .update(JSON.stringify(plan.buildArgs))
        .update(readFileSync(join(this.repoRoot, plan.dockerfile)));
      for (const file of contextFiles(this.repoRoot)) h.update(file).update(readFileSync(join(this.repoRoot, file)));
    }
    return h.digest('hex').slice(0, 32);
  }

  private async buildComponent(recipe: ComponentRecipe, name: string): Promise<void> {
    const dir = join(this.dirs.bundle, 'components');
    await this.host.exec(this.buildah(['from', '--name', name, recipe.base]));
    for (const f of recipe.files)
      await this.host.exec(this.buildah(['copy', '--chmod', '0755', name, join(dir, f.component), f.to]));
    if (recipe.setup)
      await this.host.exec(
        this.buildah(['run', '--isolation', 'chroot', name, '--', 'sh', '-ec', recipe.setup.join('\n')]),
      );
    const config = ['--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
    if (recipe.entrypoint) config.push('--entrypoint', JSON.stringify(recipe.entrypoint), '--cmd', '[]');
    if (recipe.user) config.push('--user', recipe.user);
    for (const [k, v] of Object.entries(recipe.env ?? {})) config.push('--env', `${k}=${v}`);
    if (recipe.workdir) config.push('--workingdir', recipe.workdir);
    await this.host.exec(this.buildah(['config', ...config, name]));
  }

  private async buildDockerfile(plan: Extract<ImagePlan, { kind: 'dockerfile' }>, recipe: string): Promise<void> {
    // The build host may reach the npm registry through a TLS-inspecting proxy: `npm ci` in the
    // Dockerfile trusts the host's CA bundle through npm's global config ($PREFIX/etc/npmrc). The folder
    // is mounted over /usr/local/etc, which Debian images have, so no mount point is left in the image.
    const npmEtc = join(this.dirs.work, 'build-host-npm-etc');
    await this.host.exec(['mkdir', '-p', npmEtc]);
    await this.host.exec(['cp', '/etc/ssl/certs/ca-certificates.crt', join(npmEtc, 'build-host-ca.crt')]);
    await this.host.writeFile(join(npmEtc, 'npmrc'), 'cafile=/usr/local/etc/build-host-ca.crt\n');
    await this.host.exec(
      this.buildah([
        'bud',
        '--isolation',
        'chroot',
        '--layers',
        '--network',
        'host',
        '--volume',
        `${npmEtc}:/usr/local/etc:ro`,
        ...Object.entries(plan.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
        '--label',
        `io.tokenize-wiki.recipe=${recipe}`,
        '-f',
        join(this.repoRoot, plan.dockerfile),
        '-t',
        plan.ref,
        this.repoRoot,
      ]),
    );
  }

  /** Builds the image of one plan into buildah's storage. */
  async build(plan: ImagePlan, recipe: string): Promise<void> {
    const name = `tw-bundle-${createHash('sha256').update(plan.ref).digest('hex').slice(0, 12)}`;
    if (plan.kind === 'missing') throw new Error(`${plan.ref}: ${plan.reason}`);
    if (plan.kind === 'dockerfile') return this.buildDockerfile(plan, recipe);
    await this.freshContainer(name);
    if (plan.kind === 'standin') {
      await plan.standIn.build(this, name, plan.tag);
      await this.commit(name, plan.ref, recipe, plan.standIn.note);
    } else {
      await this.buildComponent(plan.recipe, name);
      await this.commit(
        name,
        plan.ref,
        recipe,
        `${plan.recipe.files.map((f) => f.component).join(', ')} built from source`,
      );
    }
  }

  archivePath(ref: string): string {
    return join(this.dirs.bundle, 'images', archiveName(ref));
  }

  private stampPath(ref: string): string {
    return join(this.dirs.work, 'archives', `${archiveName(ref)}.image-id`);
  }

  /** Writes the image as an OCI archive named for containerd (see annotateIndex). */
  async exportArchive(ref: string): Promise<void> {
    const layout = join(this.dirs.work, 'archives', `${archiveName(ref)}.d`);
    const archive = this.archivePath(ref);
    await this.host.exec(['rm', '-rf', layout]);
    await this.host.exec(['mkdir', '-p', join(this.dirs.bundle, 'images')]);
    await this.host.exec(this.buildah(['push', '--quiet', ref, `oci:${layout}:${ref}`]));
    const index = join(layout, 'index.json');
    const text = await this.host.readFile(index);
    if (text !== undefined) await this.host.writeFile(index, annotateIndex(text, ref, index));
    // Fixed order, owners and times: the same image gives the same archive bytes.
    await this.host.exec([
      'tar',
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-C',
      layout,
      '-cf',
      `${archive}.tmp`,
      'oci-layout',
      'index.json',
      'blobs',
    ]);
    await this.host.exec(['mv', `${archive}.tmp`, archive]);
    await this.host.exec(['rm', '-rf', layout]);
    await this.host.writeFile(this.stampPath(ref), `${await this.imageId(ref)}\n`);
  }

  /** Steps: host tools, then per buildable image "built" and "archived"; missing images are returned. */
  steps(plans: readonly ImagePlan[]): Step[] {
    const steps: Step[] = [
      {
        name: 'image-build-tools',
        goal: 'buildah and debootstrap are installed (Debian packages)',
        check: async (host) =>
          (await host.probe(['buildah', '--version'])).exitCode === 0 &&
          (await host.probe(['debootstrap', '--version'])).exitCode === 0,
        apply: async (host) => {
          await host.exec(['apt-get', 'update', '-qq'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
          await host.exec(['apt-get', 'install', '-y', '-qq', 'buildah', 'debootstrap'], {
            env: { DEBIAN_FRONTEND: 'noninteractive' },
          });
        },
      },
      {
        name: 'image-work-dirs',
        goal: `${this.dirs.work}/archives exists`,
        check: (host) => host.exists(join(this.dirs.work, 'archives')),
        apply: async (host) =>
          void (await host.exec(['mkdir', '-p', join(this.dirs.work, 'archives'), join(this.dirs.bundle, 'images')])),
      },
    ];
    for (const plan of plans) {
      if (plan.kind === 'missing') continue;
      let recipe: string | undefined;
      const digest = (): string => (recipe ??= this.recipeDigest(plan));
      steps.push({
        name: `image ${plan.ref}`,
        goal: `${plan.ref} is built (${plan.kind === 'standin' ? 'stand-in' : plan.kind === 'dockerfile' ? plan.dockerfile : 'component binaries'})`,
        check: async () => (await this.recipeLabel(plan.ref)) === digest(),
        apply: () => this.build(plan, digest()),
      });
      if (!runsOnNodes(plan)) continue;
      steps.push({
        name: `archive ${archiveName(plan.ref)}`,
        goal: `images/${archiveName(plan.ref)} holds the current ${plan.ref}`,
        check: async (host) => {
          if (!(await host.exists(this.archivePath(plan.ref)))) return false;
          const id = await this.imageId(plan.ref);
          return id !== '' && (await host.readFile(this.stampPath(plan.ref)))?.trim() === id;
        },
        apply: () => this.exportArchive(plan.ref),
      });
    }
    const keep = new Set(plans.filter((p) => p.kind === 'missing' || runsOnNodes(p)).map((p) => archiveName(p.ref)));
    const imagesDir = join(this.dirs.bundle, 'images');
    const stale = (): string[] =>
      existsSync(imagesDir) ? readdirSync(imagesDir).filter((f) => f.endsWith('.oci.tar') && !keep.has(f)) : [];
    steps.push({
      name: 'stale-archives',
      goal: 'images/ holds no archive of an image the cluster no longer runs',
      check: async () => stale().length === 0,
      apply: async (host) => void (await host.exec(['rm', '-f', ...stale().map((f) => join(imagesDir, f))])),
    });
    return steps;
  }
}

/** False for bases that only images are built on (Dockerfile FROMs, local bases): they need no archive. */
export function runsOnNodes(plan: ImagePlan): boolean {
  return plan.usedBy.some((u) => !u.startsWith('images/') && !u.startsWith('base of '));
}

/** The build context the Dockerfiles may see: the .dockerignore allow-list, walked. */
export function contextFiles(repoRoot: string): string[] {
  const allowed = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/\/$/, ''));
  const files: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(repoRoot, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) for (const e of readdirSync(abs).sort()) walk(join(rel, e));
    else files.push(rel);
  };
  allowed.forEach(walk);
  return files;
}

const BundlePins = z.looseObject({
  kubernetes: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  busybox: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a busybox release like 1.37.0'),
  nodeImageNpm: z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, 'expected the npm version the nodeImage release bundles, like 10.8.2'),
});

/** Folders whose manifests (ours and vendored upstream ones) name the cluster's images. */
export const MANIFEST_FOLDERS = ['infrastructure', 'argocd', 'apps', 'clusters'];

/** Reads everything planImages needs: versions.yaml, the overlay, the manifests, kubeadm, components/. */
export async function planBundleImages(
  host: Host,
  repoRoot: string,
  dirs: ImageDirs,
  overlay: string,
  ours: PlanInputs['ours'],
): Promise<ImagePlan[]> {
  const versionsFile = join(repoRoot, 'versions.yaml');
  const pins = BundlePins.safeParse(parse(readFileSync(versionsFile, 'utf8')));
  if (!pins.success) {
    const issue = pins.error.issues[0];
    throw new UsageError(`${versionsFile}: key ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const overlayFile = join('apps/wiki-tokenizer/overlays', overlay, 'kustomization.yaml');
  const overlayText = await host.readFile(join(repoRoot, overlayFile));
  if (overlayText === undefined) throw new UsageError(`--overlay ${overlay}: ${overlayFile} does not exist`);
  const kubeadm = join(dirs.bundle, 'bin/kubeadm');
  let kubeadmImages: string[] | undefined;
  if (await host.exists(kubeadm)) {
    const r = await host.probe([
      kubeadm,
      'config',
      'images',
      'list',
      '--kubernetes-version',
      `v${pins.data.kubernetes}`,
    ]);
    if (r.exitCode !== 0)
      throw new Error(`${kubeadm} config images list failed: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
    kubeadmImages = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }
  const componentsDir = join(dirs.bundle, 'components');
  const components = existsSync(componentsDir)
    ? readdirSync(componentsDir).filter((f) => statSync(join(componentsDir, f)).isFile())
    : [];
  return planImages({
    ours,
    overlayFile,
    overlayText,
    dockerfileText: (f) => readFileSync(join(repoRoot, f), 'utf8'),
    manifestRefs: manifestImages(repoRoot, MANIFEST_FOLDERS),
    kubeadmImages,
    standIns: standIns(pins.data.nodeImageNpm),
    recipes: componentRecipes(`docker.io/library/busybox:${pins.data.busybox}`),
    components: new Set(components),
    dynamicComponents: new Set(components.filter((c) => !isStaticElf(readHead(join(componentsDir, c))))),
  });
}

export interface BundleImagesRun {
  host: Host;
  log: Logger;
  /** Plan and report lines. */
  out: (line: string) => void;
  repoRoot: string;
  dirs: ImageDirs;
  /** The wiki-tokenizer overlay whose `images:` name our two images. */
  overlay: string;
  ours: PlanInputs['ours'];
}

/**
 * Plans and builds the bundle's images; run it after the component binaries are built (the plan reads
 * components/). Returns the archives for bundle.json and the images that could not be built yet.
 */
export async function buildBundleImages(
  r: BundleImagesRun,
): Promise<{ images: { name: string; file: string }[]; missing: ImagePlan[] }> {
  const plans = await planBundleImages(r.host, r.repoRoot, r.dirs, r.overlay, r.ours);
  await runSteps(new BundleImages(r.host, r.dirs, r.repoRoot, r.log).steps(plans), r.host, r.log, r.out);
  const missing = plans.filter((p) => p.kind === 'missing');
  for (const p of missing)
    r.out(`missing image ${p.ref}: ${p.reason}${p.usedBy.length ? ` (used by ${p.usedBy.join(', ')})` : ''}`);
  const images = plans
    .filter((p) => p.kind !== 'missing' && runsOnNodes(p))
    .map((p) => ({ name: p.ref, file: join('images', archiveName(p.ref)) }));
  r.log.info(`${images.length} image archives in ${join(r.dirs.bundle, 'images')}, ${missing.length} images missing`);
  return { images, missing };
}
