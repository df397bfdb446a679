// CustomResourceDefinitions of the operators the GitOps tree relies on, at the versions pinned in
// versions.yaml, taken from the operators' own Go modules through the Go module proxy (cached in
// the Go module cache). Never committed. Shared by test/kube (installed into a real API server) and
// test/gitops (offline schema validation).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { goModule } from '../../scripts/lib/go-modules.js';
import { repoRoot } from '../harness/paths.js';
import { cacheRoot } from './harness.js';

const CrdPinsSchema = z.object({
  argocd: z.string().regex(/^v\d+\.\d+\.\d+$/, 'must look like v3.5.1'),
  kuberay: z.string().regex(/^v\d+\.\d+\.\d+$/, 'must look like v1.6.2'),
  prometheusOperator: z.string().regex(/^v\d+\.\d+\.\d+$/, 'must look like v0.85.0'),
});
export type CrdPins = z.infer<typeof CrdPinsSchema>;

export async function crdPins(): Promise<CrdPins> {
  const file = path.join(repoRoot, 'versions.yaml');
  const parsed = CrdPinsSchema.safeParse(YAML.parse(await fs.readFile(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: key ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export interface CrdSource {
  /** Short name used in messages: kuberay, argocd, prometheus-operator. */
  name: string;
  module: string;
  version: string;
  /** Folder inside the module that holds the CRD files. */
  folder: string;
  /** Which files of that folder to take. */
  files: RegExp;
}

export function crdSources(pins: CrdPins): CrdSource[] {
  return [
    {
      name: 'kuberay',
      module: 'github.com/ray-project/kuberay/ray-operator',
      version: pins.kuberay,
      folder: 'config/crd/bases',
      files: /^ray\.io_.*\.yaml$/,
    },
    {
      name: 'argocd',
      module: 'github.com/argoproj/argo-cd/v3',
      version: pins.argocd,
      folder: 'manifests/crds',
      files: /-crd\.yaml$/,
    },
    {
      name: 'prometheus-operator',
      module: 'github.com/prometheus-operator/prometheus-operator',
      version: pins.prometheusOperator,
      folder: 'example/prometheus-operator-crd',
      files: /^monitoring\.coreos\.com_.*\.yaml$/,
    },
  ];
}

const CrdObject = z
  .object({
    apiVersion: z.literal('apiextensions.k8s.io/v1'),
    kind: z.literal('CustomResourceDefinition'),
    metadata: z.object({ name: z.string() }),
    spec: z
      .object({
        group: z.string(),
        names: z.object({ kind: z.string(), plural: z.string() }),
        versions: z.array(z.object({ name: z.string() }).passthrough()),
      })
      .passthrough(),
  })
  .passthrough();
export type Crd = z.infer<typeof CrdObject>;

export interface CrdDocument {
  source: string;
  version: string;
  /** Path inside the module, for messages. */
  file: string;
  /** The file's YAML text as published. */
  yaml: string;
  crd: Crd;
}

const CrdDocumentSchema = z.object({
  source: z.string(),
  version: z.string(),
  file: z.string(),
  yaml: z.string(),
  crd: CrdObject,
});

/**
 * Downloads (once, via the Go module cache) and returns every pinned CRD, one entry per CRD. Parsing
 * ~10 MB of CRD YAML takes seconds, so each source's result is cached as JSON under
 * ~/.cache/tokenize-wiki/crds/, keyed by module and version.
 */
export async function fetchCrds(sources?: CrdSource[]): Promise<CrdDocument[]> {
  const list = sources ?? crdSources(await crdPins());
  const out: CrdDocument[] = [];
  for (const src of list) out.push(...(await sourceCrds(src)));
  return out;
}

async function sourceCrds(src: CrdSource): Promise<CrdDocument[]> {
  const cacheFile = path.join(cacheRoot(), 'crds', `${src.module.replaceAll('/', '_')}@${src.version}.json`);
  const cached = await fs.readFile(cacheFile, 'utf8').catch(() => undefined);
  if (cached !== undefined) {
    const parsed = z.array(CrdDocumentSchema).safeParse(JSON.parse(cached));
    if (parsed.success && parsed.data.length > 0) return parsed.data;
  }
  const dir = path.join(await goModule(src.module, src.version), src.folder);
  const names = (await fs.readdir(dir)).filter((f) => src.files.test(f)).sort();
  if (names.length === 0) throw new Error(`${src.module}@${src.version}: no CRD files in ${src.folder}`);
  const out: CrdDocument[] = [];
  for (const name of names) {
    const file = `${src.folder}/${name}`;
    const text = await fs.readFile(path.join(dir, name), 'utf8');
    for (const doc of YAML.parseAllDocuments(text, { version: '1.1' })) {
      const value: unknown = doc.toJS();
      if (value === null) continue;
      const parsed = CrdObject.safeParse(value);
      if (!parsed.success) {
        throw new Error(
          `${src.module}@${src.version} ${file}: not a CustomResourceDefinition (${parsed.error.issues[0]?.message ?? ''})`,
        );
      }
      // the document's own text, as published
      const yaml = doc.range ? text.slice(doc.range[0], doc.range[2]) : text;
      out.push({ source: src.name, version: src.version, file, yaml, crd: parsed.data });
    }
  }
  await fs.mkdir(path.dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(out));
  await fs.rename(tmp, cacheFile); // atomic: parallel test files may write it at once
  return out;
}

/** Applies CRDs to a live API server (server-side, so large schemas fit) and waits until served. */
export async function installCrds(
  kubectl: (
    args: readonly string[],
    opts?: { input?: string },
  ) => Promise<{ code: number; stdout: string; stderr: string }>,
  docs: readonly CrdDocument[],
): Promise<void> {
  const input = docs.map((d) => d.yaml).join('\n---\n');
  const applied = await kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], { input });
  if (applied.code !== 0) throw new Error(`installing CRDs failed: ${applied.stderr.trim()}`);
  const names = docs.map((d) => `crd/${d.crd.metadata.name}`);
  const waited = await kubectl(['wait', '--for=condition=Established', '--timeout=120s', ...names]);
  if (waited.code !== 0) throw new Error(`CRDs not established: ${waited.stderr.trim()}`);
}
