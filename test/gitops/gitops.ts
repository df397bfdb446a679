// Shared machinery of the GitOps validation suite: the pins, the kustomizations of the tree, and rendering with
// `kubectl kustomize` as Argo CD does. The tree names no remote resource: upstream manifests are vendored under
// `upstream/` folders (scripts/lib/upstream.ts says why), so every render is local.
import { cacheRoot, repoRoot } from '../harness/paths.js';
import { exec, type ExecResult } from '../harness/proc.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';

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
  nodeImage: z.string().regex(/^\d+\.\d+\.\d+-[a-z0-9-]+$/, 'expected a tag like 26.12.1-bookworm-slim'),
  python: z.string().regex(/^\d+\.\d+$/, 'expected MAJOR.MINOR'),
  nativeBuildImage: z.string().regex(/^[a-z]+(?:-\d{8})?-slim$/, 'expected a Debian image tag like trixie-slim'),
  busybox: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  kuberayCrds: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  prometheusOperator: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  pushgateway: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  // The test harness's S3 server (a Go module pseudo-version); read here only to check the tree.
  seaweedfs: z.string().optional(),
  // Megatron-LM's reader and its torch, for the tests that read our megatron output.
  megatronCore: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  torch: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
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
export { goModule } from '../../scripts/lib/go-modules.js';

// ---------------------------------------------------------------------------------------------
// Kustomizations

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

/** The folder of a kustomization that holds vendored upstream files (scripts/vendor-upstream.mts). */
export const VENDORED = 'upstream';

/** Top-level folders whose kustomizations Argo CD renders (or the bootstrap applies). */
export const GITOPS_FOLDERS = ['argocd', 'clusters', 'infrastructure', 'apps'];

export function listKustomizations(): Kustomization[] {
  const out: Kustomization[] = [];
  const walk = (rel: string): void => {
    const abs = path.join(repoRoot, rel);
    const file = path.join(abs, 'kustomization.yaml');
    if (existsSync(file)) {
      const parsed = KustomizationFile.safeParse(YAML.parse(readFileSync(file, 'utf8')));
      if (!parsed.success)
        throw new Error(`${rel}/kustomization.yaml: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      out.push({
        dir: rel,
        kind: parsed.data.kind ?? 'Kustomization',
        resources: parsed.data.resources ?? [],
        components: parsed.data.components ?? [],
      });
    }
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      // Dot folders are scratch copies made by renderWithComponents while another file runs; vendored upstream
      // kustomizations are rendered only through ours.
      if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== VENDORED)
        walk(path.posix.join(rel, entry.name));
    }
  };
  for (const top of GITOPS_FOLDERS) if (existsSync(path.join(repoRoot, top))) walk(top);
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

export function isRemote(ref: string): boolean {
  return /^(https?:\/\/|git@|github\.com\/|ssh:\/\/)/.test(ref) || ref.includes('?ref=');
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
    if (!parsed.success)
      throw new Error(`${source}: not a Kubernetes object (${parsed.error.issues[0]?.message ?? ''})`);
    out.push(parsed.data);
  }
  return out;
}

async function kustomize(dir: string, label: string): Promise<K8sObject[]> {
  const r = await exec('kubectl', ['kustomize', dir]);
  if (r.code !== 0)
    throw new Error(`kubectl kustomize ${label} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return parseObjects(r.stdout, label);
}

const renders = new Map<string, Promise<K8sObject[]>>();

/** Renders a kustomization of the tree (relative dir) as Argo CD would: `kubectl kustomize`, default load restrictor. */
export function render(dir: string): Promise<K8sObject[]> {
  let result = renders.get(dir);
  if (!result) {
    result = renderUncached(dir);
    renders.set(dir, result);
  }
  return result;
}

/** Where renders of folders with vendored upstream files are kept: the upstream CRDs take seconds to parse. */
function renderCacheDir(): string {
  return path.join(cacheRoot(), 'gitops-renders');
}

/** Hash of everything a render depends on: the kubectl and the folder's files (such folders reference no other). */
async function folderKey(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const kubectl = await exec('kubectl', ['version', '--client']);
  hash.update(kubectl.stdout);
  for (const name of (await fs.readdir(path.join(repoRoot, dir), { recursive: true })).sort()) {
    const file = path.join(repoRoot, dir, name);
    if ((await fs.stat(file)).isFile())
      hash
        .update(`${name}\0`)
        .update(await fs.readFile(file))
        .update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

async function renderUncached(dir: string): Promise<K8sObject[]> {
  if (!existsSync(path.join(repoRoot, dir, VENDORED))) return kustomize(path.join(repoRoot, dir), dir);
  const cached = path.join(renderCacheDir(), `${dir.replaceAll('/', '_')}-${await folderKey(dir)}.yaml`);
  if (existsSync(cached)) return parseObjects(await fs.readFile(cached, 'utf8'), `${dir} (cached render ${cached})`);
  const objects = await kustomize(path.join(repoRoot, dir), dir);
  await fs.mkdir(path.dirname(cached), { recursive: true });
  const tmp = `${cached}.${process.pid}.tmp`;
  await fs.writeFile(tmp, objects.map((o) => YAML.stringify(o)).join('---\n'));
  await fs.rename(tmp, cached);
  return objects;
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
    const added = components.map((c) => path.relative(scratch, path.join(repoRoot, c)));
    // clusters/components/wiring wires every Application listed before it: it stays last.
    const wiring = own.findIndex((c) => c.endsWith('components/wiring'));
    const cut = wiring < 0 ? own.length : wiring;
    doc.set('components', [...own.slice(0, cut), ...added, ...own.slice(cut)]);
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
  'apps/wiki-tokenizer/components/nodes-4cpu-16gib',
];
/** Optional platform Applications a cluster may add (clusters/components), besides the object store both use. */
export const CLUSTER_COMPONENTS = ['clusters/components/monitoring', 'clusters/components/logging'];
export const APP_OVERLAYS = [
  'apps/wiki-tokenizer/overlays/prod',
  'apps/wiki-tokenizer/overlays/dev',
  'apps/wiki-tokenizer/overlays/dev-3',
];
export const CLUSTERS = ['prod', 'dev', 'dev-3'];
