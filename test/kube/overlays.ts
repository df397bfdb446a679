// Finds the kustomizations of the GitOps tree and renders them with the pinned kubectl, offline.
//
// Some kustomizations name upstream release manifests by URL (Argo CD's install.yaml, Flannel,
// local-path-provisioner, KubeRay's config/default). Tests reach no such host, but each of those
// files is also inside the project's Go module at the same tag, which the Go module proxy serves.
// So the tree is copied to a scratch folder and each remote reference is pointed at the same file in
// the Go module cache; what renders is byte-for-byte what the URL would have given.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { goModDir, repoRoot, run } from './harness.js';

export const GITOPS_ROOTS = ['clusters', 'apps', 'infrastructure', 'argocd'] as const;
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export interface Overlay {
  /** Folder relative to the repository root, e.g. apps/wiki-tokenizer/overlays/dev. */
  dir: string;
  /** Remote references reachable from it (through local bases too). */
  remote: string[];
  /** Why it cannot render offline (a remote reference with no Go module, a Helm chart), if so. */
  offlineBlocker?: string;
}

/** Where a remote reference's content lives in a Go module. */
export interface ModuleFile {
  module: string;
  version: string;
  /** Path inside the module: a file (raw URL) or a kustomization folder (git URL). */
  subpath: string;
  /** Extra environment for `go mod download`. */
  env?: NodeJS.ProcessEnv;
}

// Repositories whose kustomize paths live in a nested Go module rather than the root one.
const NESTED_MODULES: Record<string, string[]> = { 'ray-project/kuberay': ['ray-operator'] };
// The checksum database the project reaches has no entry for these modules; the Go module proxy
// still serves them, so they are fetched without the sumdb check (test input only, never shipped).
const NO_SUMDB = new Set(['github.com/rancher/local-path-provisioner']);

const RAW = /^https:\/\/raw\.githubusercontent\.com\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/;
const GIT = /^(?:https:\/\/)?github\.com\/([^/]+)\/([^/]+?)(?:\.git)?\/\/([^?]+)\?ref=([^&]+)$/;

/** Maps a kustomize remote reference to a file or folder of a Go module, when there is one. */
export function moduleFileFor(ref: string): ModuleFile | undefined {
  const raw = RAW.exec(ref);
  const git = raw ? undefined : GIT.exec(ref);
  const m = raw ?? git;
  if (!m) return undefined;
  const [, owner, repo, a, b] = m as unknown as [string, string, string, string, string];
  const [version, inRepo] = raw ? [a, b] : [b, a];
  if (!/^v\d+\.\d+\.\d+$/.test(version)) return undefined; // branches and commits have no module version
  let module = `github.com/${owner}/${repo}`;
  let subpath = inRepo.replace(/\/$/, '');
  const nested = (NESTED_MODULES[`${owner}/${repo}`] ?? []).find((n) => subpath.startsWith(`${n}/`));
  if (nested) {
    module += `/${nested}`;
    subpath = subpath.slice(nested.length + 1);
  }
  // Semantic import versioning: a v2+ module path ends in /vN.
  const major = Number(version.slice(1).split('.')[0]);
  if (major >= 2) module += `/v${major}`;
  return { module, version, subpath, env: NO_SUMDB.has(module) ? { GONOSUMDB: module } : undefined };
}

function kustomizationFile(absDir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(absDir, f)).find((f) => existsSync(f));
}

function parseKustomization(file: string): Record<string, unknown> {
  const value: unknown = YAML.parse(readFileSync(file, 'utf8'));
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

const REMOTE = /^(https?:\/\/|git@|ssh:\/\/|git::|github\.com\/|gitlab\.com\/)/;

function references(k: Record<string, unknown>): string[] {
  return ['resources', 'bases', 'components']
    .flatMap((key) => (Array.isArray(k[key]) ? (k[key] as unknown[]) : []))
    .filter((r): r is string => typeof r === 'string');
}

interface RemoteScan {
  remote: string[];
  blocker?: string;
}

/** Remote references reachable from a kustomization folder, following local folders. */
function scanRemote(absDir: string, seen = new Set<string>()): RemoteScan {
  const out: RemoteScan = { remote: [] };
  if (seen.has(absDir)) return out;
  seen.add(absDir);
  const file = kustomizationFile(absDir);
  if (!file) return out;
  const k = parseKustomization(file);
  const rel = path.relative(repoRoot, file);
  if (Array.isArray(k.helmCharts) && k.helmCharts.length > 0) out.blocker = `${rel}: helmCharts`;
  for (const ref of references(k)) {
    if (REMOTE.test(ref)) {
      out.remote.push(ref);
      if (!moduleFileFor(ref)) out.blocker ??= `${rel}: ${ref}`;
      continue;
    }
    const local = path.resolve(absDir, ref);
    if (existsSync(local) && statSync(local).isDirectory()) {
      const inner = scanRemote(local, seen);
      out.remote.push(...inner.remote);
      out.blocker ??= inner.blocker;
    }
  }
  return out;
}

/** Every kustomization folder under the GitOps roots, except Components (not buildable alone). */
export function discoverOverlays(): Overlay[] {
  const found: Overlay[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(abs, entry.name));
    }
    const file = kustomizationFile(abs);
    if (!file || parseKustomization(file).kind === 'Component') return;
    const scan = scanRemote(abs);
    found.push({ dir: path.relative(repoRoot, abs), remote: scan.remote, offlineBlocker: scan.blocker });
  };
  for (const root of GITOPS_ROOTS) {
    const abs = path.join(repoRoot, root);
    if (existsSync(abs)) walk(abs);
  }
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

export interface OfflineTree {
  /** Scratch copy of the GitOps roots with remote references pointed at the Go module cache. */
  root: string;
  /** remote reference -> local path it was replaced by */
  substituted: Map<string, string>;
  remove(): Promise<void>;
}

/** Copies the GitOps roots to a scratch folder and points every mappable remote reference at its Go module file. */
export async function offlineTree(): Promise<OfflineTree> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-gitops-'));
  const substituted = new Map<string, string>();
  for (const r of GITOPS_ROOTS) {
    const src = path.join(repoRoot, r);
    if (existsSync(src)) await fs.cp(src, path.join(root, r), { recursive: true });
  }
  const files: string[] = [];
  const walk = (abs: string) => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const p = path.join(abs, e.name);
      if (e.isDirectory()) walk(p);
      else if (KUSTOMIZATION_FILES.includes(e.name)) files.push(p);
    }
  };
  walk(root);
  for (const file of files) {
    let text = await fs.readFile(file, 'utf8');
    for (const ref of references(parseKustomization(file))) {
      const target = moduleFileFor(ref);
      if (!target) continue;
      let local = substituted.get(ref);
      if (!local) {
        local = path.join(await goModDir(target.module, target.version, target.env), target.subpath);
        if (!existsSync(local)) throw new Error(`${ref}: ${target.subpath} not found in ${target.module}@${target.version}`);
        substituted.set(ref, local);
      }
      // kustomize refuses absolute paths for bases ("new root cannot be absolute")
      text = text.split(ref).join(path.relative(path.dirname(file), local));
    }
    await fs.writeFile(file, text);
  }
  return { root, substituted, remove: () => fs.rm(root, { recursive: true, force: true }) };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/**
 * `kubectl kustomize <dir>`: the rendered YAML text and its objects. `root` is the repository root
 * or an offlineTree's root; files from the Go module cache sit outside it, hence the load restrictor.
 */
export async function render(kubectl: string, dir: string, root: string = repoRoot): Promise<{ yaml: string; objects: K8sObject[] }> {
  const r = await run(kubectl, ['kustomize', '--load-restrictor=LoadRestrictionsNone', path.join(root, dir)]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr.trim()}`);
  // YAML 1.1, as kubectl and the API server's YAML decoder read it
  const objects = YAML.parseAllDocuments(r.stdout, { version: '1.1' })
    .map((d) => d.toJS() as unknown)
    .filter((o): o is K8sObject => typeof o === 'object' && o !== null && 'kind' in o);
  return { yaml: r.stdout, objects };
}

/**
 * Objects as one JSON `v1 List` for `kubectl apply -f -`. JSON, not re-serialised YAML: kubectl reads
 * YAML 1.1, where a plain `no` written by a YAML 1.2 serialiser turns into the boolean false.
 */
export function asList(objects: readonly K8sObject[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}
