// Shared machinery of the GitOps validation suite: the pins, the kustomizations of the tree, their
// remote references, and rendering with `kubectl kustomize`.
//
// No network but the package registries is reachable here, so a kustomization with remote
// resources is rendered from the same upstream files taken from the upstream project's Go module at
// the pinned tag (through the Go module proxy, cached in the Go module cache): each remote
// reference is replaced by the module's copy of the same path, and everything else (patches,
// generators, transformers) runs as Argo CD would run it.
import { run as exec, type ExecResult } from '../kube/harness.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const Pins = z.object({
  kubernetes: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH without a leading v'),
  flannel: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  containerd: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  crictl: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  flannelCni: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  localPath: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  kuberay: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  ray: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  argocd: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  node: z.string().regex(/^\d+$/, 'expected a Node.js major version'),
  nodeImage: z.string().regex(/^\d+\.\d+\.\d+-[a-z0-9-]+$/, 'expected a tag like 20.20.2-bookworm-slim'),
  python: z.string().regex(/^\d+\.\d+$/, 'expected MAJOR.MINOR'),
  busybox: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  kuberayCrds: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  prometheusOperator: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  // The test harness's S3 server (a Go module pseudo-version); read here only to check the tree.
  seaweedfs: z.string().optional(),
});
export type Pins = z.infer<typeof Pins>;

export function loadPins(): Pins {
  const file = path.join(repoRoot, 'versions.yaml');
  const parsed = Pins.safeParse(YAML.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: key ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

// One spawn-and-collect helper for the test suites: test/kube's (stdin closed unless input is given).
export { exec, type ExecResult };

// ---------------------------------------------------------------------------------------------
// Go modules

/**
 * h1 checksums for module versions that sum.golang.org does not list (it answers 404 for
 * local-path-provisioner v0.0.37), so `go` cannot verify them itself; we verify against these.
 * Bumping such a pin means checking the new zip and adding its sum here.
 */
const UNLISTED_SUMS: Record<string, string> = {
  'github.com/rancher/local-path-provisioner@v0.0.37': 'h1:xRGhYXH31HtfbYWA9Qe8zAqCmHuw4dDRZNrDlWe0OQg=',
};

const GoModDownload = z.object({ Dir: z.string().optional(), Sum: z.string().optional(), Error: z.string().optional() });
const moduleDirs = new Map<string, Promise<string>>();

/** `go mod download` one module version (once per process) and return its directory. */
export function goModule(module: string, version: string): Promise<string> {
  const key = `${module}@${version}`;
  let dir = moduleDirs.get(key);
  if (!dir) {
    dir = downloadModule(module, version);
    moduleDirs.set(key, dir);
  }
  return dir;
}

async function downloadModule(module: string, version: string): Promise<string> {
  const key = `${module}@${version}`;
  const pinnedSum = UNLISTED_SUMS[key];
  const env: NodeJS.ProcessEnv = { ...process.env, GOFLAGS: '-mod=mod', GOWORK: 'off' };
  if (pinnedSum) env.GONOSUMDB = module;
  const r = await exec('go', ['mod', 'download', '-json', key], { cwd: os.tmpdir(), env });
  let info: z.infer<typeof GoModDownload> = {};
  try {
    info = GoModDownload.parse(JSON.parse(r.stdout));
  } catch {
    // reported below with go's own stderr
  }
  if (r.code !== 0 || !info.Dir) throw new Error(`go mod download ${key} failed: ${info.Error ?? r.stderr.trim()}`);
  if (pinnedSum && info.Sum !== pinnedSum) throw new Error(`go mod download ${key}: checksum ${info.Sum ?? '?'} != pinned ${pinnedSum}`);
  return info.Dir;
}

// ---------------------------------------------------------------------------------------------
// Kustomizations and remote references

export interface Kustomization {
  /** Directory relative to the repo root, e.g. infrastructure/flannel. */
  dir: string;
  kind: 'Kustomization' | 'Component';
  resources: string[];
  components: string[];
}

const KustomizationFile = z.looseObject({
  kind: z.enum(['Kustomization', 'Component']).optional(),
  resources: z.array(z.string()).optional(),
  components: z.array(z.string()).optional(),
});

/** Top-level folders whose kustomizations Argo CD renders (or the bootstrap applies). */
export const GITOPS_FOLDERS = ['argocd', 'clusters', 'infrastructure', 'apps'];

export function listKustomizations(): Kustomization[] {
  const out: Kustomization[] = [];
  const walk = (rel: string): void => {
    const abs = path.join(repoRoot, rel);
    const file = path.join(abs, 'kustomization.yaml');
    if (existsSync(file)) {
      const parsed = KustomizationFile.safeParse(YAML.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) throw new Error(`${rel}/kustomization.yaml: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      out.push({
        dir: rel,
        kind: parsed.data.kind ?? 'Kustomization',
        resources: parsed.data.resources ?? [],
        components: parsed.data.components ?? [],
      });
    }
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      // Dot folders are scratch copies made by renderWithComponents while another file runs.
      if (entry.isDirectory() && !entry.name.startsWith('.')) walk(path.posix.join(rel, entry.name));
    }
  };
  for (const top of GITOPS_FOLDERS) if (existsSync(path.join(repoRoot, top))) walk(top);
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

export function isRemote(ref: string): boolean {
  return /^(https?:\/\/|git@|github\.com\/|ssh:\/\/)/.test(ref) || ref.includes('?ref=');
}

/** One remote resource of a kustomization, resolved to the upstream Go module that has it. */
export interface RemoteRef {
  ref: string;
  /** owner/repo on GitHub. */
  repo: string;
  /** The tag or commit the reference is pinned to. */
  pin: string;
  /** Path inside the repository. */
  repoPath: string;
  /** A single file (raw URL) or a kustomization directory (git URL). */
  type: 'file' | 'dir';
}

const RAW_FILE = /^https:\/\/raw\.githubusercontent\.com\/([^/]+\/[^/]+)\/([^/]+)\/(.+)$/;
const GIT_DIR = /^https:\/\/github\.com\/([^/]+\/[^/]+?)(?:\.git)?\/\/([^?]+)\?ref=([^&]+)$/;

export function parseRemote(ref: string): RemoteRef | undefined {
  const file = RAW_FILE.exec(ref);
  if (file) return { ref, repo: file[1] ?? '', pin: file[2] ?? '', repoPath: file[3] ?? '', type: 'file' };
  const dir = GIT_DIR.exec(ref);
  if (dir) return { ref, repo: dir[1] ?? '', pin: dir[3] ?? '', repoPath: dir[2] ?? '', type: 'dir' };
  return undefined;
}

/** A release tag (vX.Y.Z) or a full commit id: immutable, unlike a branch. */
export function isImmutablePin(pin: string): boolean {
  return /^v\d+\.\d+\.\d+$/.test(pin) || /^[0-9a-f]{40}$/.test(pin);
}

/** Which Go module holds each upstream repository's files, and under which path prefix. */
interface UpstreamModule {
  module: string;
  /** Path of the module inside the repository ('' for the root). */
  prefix: string;
}
const UPSTREAM_MODULES: Record<string, UpstreamModule> = {
  'flannel-io/flannel': { module: 'github.com/flannel-io/flannel', prefix: '' },
  'rancher/local-path-provisioner': { module: 'github.com/rancher/local-path-provisioner', prefix: '' },
  'argoproj/argo-cd': { module: 'github.com/argoproj/argo-cd/v3', prefix: '' },
  'ray-project/kuberay': { module: 'github.com/ray-project/kuberay/ray-operator', prefix: 'ray-operator/' },
};

/** The module-cache path holding the same content as a remote reference. */
export async function resolveRemote(remote: RemoteRef): Promise<string> {
  const upstream = UPSTREAM_MODULES[remote.repo];
  if (!upstream) throw new Error(`${remote.ref}: no Go module known for ${remote.repo} (add it to UPSTREAM_MODULES)`);
  if (!remote.repoPath.startsWith(upstream.prefix)) {
    throw new Error(`${remote.ref}: ${remote.repoPath} is outside the module ${upstream.module}`);
  }
  const dir = await goModule(upstream.module, remote.pin);
  const local = path.join(dir, remote.repoPath.slice(upstream.prefix.length));
  if (!existsSync(local)) throw new Error(`${remote.ref}: ${upstream.module}@${remote.pin} has no ${remote.repoPath}`);
  const isDir = statSync(local).isDirectory();
  if (isDir !== (remote.type === 'dir')) throw new Error(`${remote.ref}: expected a ${remote.type} in ${upstream.module}@${remote.pin}`);
  return local;
}

// ---------------------------------------------------------------------------------------------
// Rendering

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

const ObjectShape = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({ name: z.string() }),
});

export function parseObjects(text: string, source: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]?.message ?? 'bad YAML'}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const parsed = ObjectShape.safeParse(value);
    if (!parsed.success) throw new Error(`${source}: not a Kubernetes object (${parsed.error.issues[0]?.message ?? ''})`);
    out.push(parsed.data as K8sObject);
  }
  return out;
}

async function kustomize(dir: string, label: string): Promise<K8sObject[]> {
  const r = await exec('kubectl', ['kustomize', dir]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${label} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return parseObjects(r.stdout, label);
}

const renders = new Map<string, Promise<K8sObject[]>>();

/**
 * Renders a kustomization of the tree (relative dir). Remote resources are swapped for their
 * module-cache copies in a scratch copy of the folder; such folders may reference no other local
 * folder (true of every remote-based kustomization here).
 */
export function render(dir: string): Promise<K8sObject[]> {
  let result = renders.get(dir);
  if (!result) {
    result = renderUncached(dir);
    renders.set(dir, result);
  }
  return result;
}

/** Where renders of remote-based kustomizations are kept: the upstream CRDs take seconds to parse. */
function renderCacheDir(): string {
  return path.join(process.env.TW_CACHE_DIR || path.join(os.homedir(), '.cache', 'tokenize-wiki'), 'gitops-renders');
}

/** Hash of everything a render depends on: the folder's files (upstream content is fixed by its pin). */
async function folderKey(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const kubectl = await exec('kubectl', ['version', '--client']);
  hash.update(kubectl.stdout);
  for (const name of (await fs.readdir(path.join(repoRoot, dir), { recursive: true })).sort()) {
    const file = path.join(repoRoot, dir, name);
    if ((await fs.stat(file)).isFile()) hash.update(`${name}\0`).update(await fs.readFile(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

async function renderUncached(dir: string): Promise<K8sObject[]> {
  const k = listKustomizations().find((x) => x.dir === dir);
  if (!k) throw new Error(`${dir}: no kustomization.yaml`);
  const remotes = k.resources.filter(isRemote);
  if (remotes.length === 0) return kustomize(path.join(repoRoot, dir), dir);
  const cached = path.join(renderCacheDir(), `${dir.replaceAll('/', '_')}-${await folderKey(dir)}.yaml`);
  if (existsSync(cached)) return parseObjects(await fs.readFile(cached, 'utf8'), `${dir} (cached render ${cached})`);
  const objects = await renderRemote(dir, k);
  await fs.mkdir(path.dirname(cached), { recursive: true });
  const tmp = `${cached}.${process.pid}.tmp`;
  await fs.writeFile(tmp, objects.map((o) => YAML.stringify(o)).join('---\n'));
  await fs.rename(tmp, cached);
  return objects;
}

async function renderRemote(dir: string, k: Kustomization): Promise<K8sObject[]> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-gitops-'));
  try {
    const copy = path.join(scratch, path.basename(dir));
    await fs.cp(path.join(repoRoot, dir), copy, { recursive: true });
    const file = path.join(copy, 'kustomization.yaml');
    const doc = YAML.parseDocument(await fs.readFile(file, 'utf8'));
    const resources: string[] = [];
    for (const [i, ref] of k.resources.entries()) {
      if (!isRemote(ref)) {
        if (ref.startsWith('..')) throw new Error(`${dir}: a remote-based kustomization may not reference ${ref}`);
        resources.push(ref);
        continue;
      }
      const remote = parseRemote(ref);
      if (!remote) throw new Error(`${dir}: unsupported remote reference ${ref}`);
      const local = await resolveRemote(remote);
      if (remote.type === 'file') {
        const name = `upstream-${i}.yaml`;
        await fs.copyFile(local, path.join(copy, name));
        resources.push(name);
      } else {
        // kustomize refuses absolute roots; a relative path to the module cache works.
        resources.push(path.relative(copy, local));
      }
    }
    doc.set('resources', resources);
    await fs.writeFile(file, doc.toString());
    return await kustomize(copy, `${dir} (remote resources from the Go module cache)`);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Renders an overlay with extra components added, as a user enabling them would (the components
 * are appended to the overlay's own kustomization, in a scratch copy next to the original).
 */
export async function renderWithComponents(overlayDir: string, components: readonly string[]): Promise<K8sObject[]> {
  const abs = path.join(repoRoot, overlayDir);
  const scratch = await fs.mkdtemp(path.join(path.dirname(abs), `.tw-test-${path.basename(abs)}-`));
  try {
    await fs.cp(abs, scratch, { recursive: true });
    const file = path.join(scratch, 'kustomization.yaml');
    const doc = YAML.parseDocument(await fs.readFile(file, 'utf8'));
    const own = z.array(z.string()).optional().parse(doc.toJS().components) ?? [];
    doc.set('components', [...own, ...components.map((c) => path.relative(scratch, path.join(repoRoot, c)))]);
    await fs.writeFile(file, doc.toString());
    return await kustomize(scratch, `${overlayDir} + ${components.join(', ')}`);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

export function objectId(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

/** The optional components a cluster overlay may enable, rendered together with each overlay. */
export const APP_COMPONENTS = [
  'apps/wiki-tokenizer/components/submitter-daemon',
  'apps/wiki-tokenizer/components/dashboard-ingress',
  'apps/wiki-tokenizer/components/buckets-ensure',
];
export const APP_OVERLAYS = ['apps/wiki-tokenizer/overlays/prod', 'apps/wiki-tokenizer/overlays/dev'];
export const CLUSTERS = ['prod', 'dev'];
