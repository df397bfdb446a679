// Finds the kustomizations of the GitOps tree and renders them with the pinned kubectl, as Argo CD would: from the
// tree alone (upstream manifests are vendored under `upstream/` folders; test/gitops checks none is remote).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../harness/paths.js';
import { exec } from '../harness/proc.js';

export const GITOPS_ROOTS = ['clusters', 'apps', 'infrastructure', 'argocd'] as const;
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export interface Overlay {
  /** Folder relative to the repository root, e.g. apps/wiki-tokenizer/overlays/dev. */
  dir: string;
}

function kustomizationFile(absDir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(absDir, f)).find((f) => existsSync(f));
}

function parseKustomization(file: string): Record<string, unknown> {
  const value: unknown = YAML.parse(readFileSync(file, 'utf8'));
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** Every kustomization folder under the GitOps roots, except Components (not buildable alone). */
export function discoverOverlays(): Overlay[] {
  const found: Overlay[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      // Vendored upstream kustomizations are rendered through ours, never alone.
      if (entry.isDirectory() && entry.name !== 'upstream') walk(path.join(abs, entry.name));
    }
    const file = kustomizationFile(abs);
    if (!file || parseKustomization(file).kind === 'Component') return;
    found.push({ dir: path.relative(repoRoot, abs) });
  };
  for (const root of GITOPS_ROOTS) {
    const abs = path.join(repoRoot, root);
    if (existsSync(abs)) walk(abs);
  }
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** `kubectl kustomize <dir>` with kustomize's default load restrictor, as Argo CD runs it: the YAML and its objects. */
export async function render(kubectl: string, dir: string): Promise<{ yaml: string; objects: K8sObject[] }> {
  const r = await exec(kubectl, ['kustomize', path.join(repoRoot, dir)]);
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
