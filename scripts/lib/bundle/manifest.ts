// bundle.json: what an air-gapped bundle holds. Versions (the versions.yaml pins and the versions read from
// upstream modules, such as the image tags kubeadm expects), every file with its sha256, every image with the
// name the manifests use, and how long each build took (the cold build time of a bundle is their sum).
import { join } from 'node:path';
import { z } from 'zod';
import type { Host } from '../host.js';
import type { Step } from '../run.js';
import { BuildStamp } from './go-builds.js';

export const MANIFEST_FILE = 'bundle.json';

/** Folders of a bundle whose files are listed (with sha256) in bundle.json. */
export const CONTENT_DIRS = ['bin', 'components', 'debs', 'images'] as const;

export const FileEntry = z.object({
  path: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const ImageEntry = z.object({
  /** The exact name the manifests and kubeadm use, e.g. registry.k8s.io/kube-apiserver:v1.36.3. */
  name: z.string(),
  /** OCI archive, relative to the bundle. */
  file: z.string(),
});
export type ImageEntry = z.infer<typeof ImageEntry>;

export const BundleManifest = z.object({
  schema: z.literal(1),
  kubernetes: z.string(),
  versions: z.record(z.string(), z.string()),
  builds: z.array(BuildStamp),
  files: z.array(FileEntry),
  images: z.array(ImageEntry),
});
export type BundleManifest = z.infer<typeof BundleManifest>;

/** `sha256sum` output lines -> entries relative to `root`; sizes come from `stat` lines `<size> <path>`. */
export function parseFileEntries(root: string, sha256sum: string, sizes: string): FileEntry[] {
  const size = new Map<string, number>();
  for (const line of sizes.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line);
    if (m?.[1] && m[2]) size.set(m[2], Number(m[1]));
  }
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const entries: FileEntry[] = [];
  for (const line of sha256sum.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const path = m[2].startsWith(prefix) ? m[2].slice(prefix.length) : m[2];
    entries.push({ path, sha256: m[1], size: size.get(m[2]) ?? 0 });
  }
  return entries.sort((a, b) => a.path.localeCompare(b.path));
}

async function probeOk(host: Host, argv: string[]): Promise<string> {
  const r = await host.probe(argv);
  if (r.exitCode !== 0)
    throw new Error(`${argv.slice(0, 3).join(' ')} ...: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return r.stdout;
}

/** Every file under the bundle's content folders, hashed. */
export async function bundleFiles(host: Host, bundle: string): Promise<FileEntry[]> {
  const dirs: string[] = [];
  for (const d of CONTENT_DIRS) if (await host.exists(join(bundle, d))) dirs.push(join(bundle, d));
  if (dirs.length === 0) return [];
  const files = (await probeOk(host, ['find', ...dirs, '-type', 'f'])).split('\n').filter(Boolean).sort();
  if (files.length === 0) return [];
  const [sums, sizes] = [
    await probeOk(host, ['sha256sum', ...files]),
    await probeOk(host, ['stat', '-c', '%s %n', ...files]),
  ];
  return parseFileEntries(bundle, sums, sizes);
}

/** Stamps of every build recorded under <root>/build/. */
export async function buildStamps(host: Host, root: string): Promise<BuildStamp[]> {
  const dir = join(root, 'build');
  if (!(await host.exists(dir))) return [];
  const names = (await probeOk(host, ['find', dir, '-maxdepth', '1', '-name', '*.json']))
    .split('\n')
    .filter(Boolean)
    .sort();
  const stamps: BuildStamp[] = [];
  for (const file of names) {
    const parsed = BuildStamp.safeParse(JSON.parse((await host.readFile(file)) ?? 'null'));
    if (!parsed.success)
      throw new Error(`${file}: not a build stamp (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    stamps.push(parsed.data);
  }
  return stamps;
}

export interface ManifestInput {
  kubernetes: string;
  versions: Record<string, string>;
  images?: ImageEntry[];
  /** Other folders whose build/ stamps belong to this bundle (binaries built in a shared cache and copied in). */
  buildRoots?: string[];
}

/** Writes bundle.json from what the bundle folder holds now; checked by comparing with the file on disk. */
export function manifestStep(bundle: string, input: ManifestInput): Step {
  const file = join(bundle, MANIFEST_FILE);
  const render = async (host: Host): Promise<string> => {
    const manifest: BundleManifest = {
      schema: 1,
      kubernetes: input.kubernetes,
      versions: Object.fromEntries(Object.entries(input.versions).sort(([a], [b]) => a.localeCompare(b))),
      builds: (await Promise.all([bundle, ...(input.buildRoots ?? [])].map((root) => buildStamps(host, root)))).flat(),
      files: await bundleFiles(host, bundle),
      images: input.images ?? [],
    };
    return `${JSON.stringify(manifest, null, 2)}\n`;
  };
  let rendered: string | undefined;
  const current = async (host: Host): Promise<string> => (rendered ??= await render(host));
  return {
    name: 'bundle.json',
    goal: `${file} lists every file of the bundle with its sha256`,
    check: async (host) => (await host.readFile(file)) === (await current(host)),
    apply: async (host) => host.writeFile(file, await current(host)),
  };
}

/** Reads and validates a bundle's bundle.json. */
export async function readManifest(host: Host, bundle: string): Promise<BundleManifest> {
  const file = join(bundle, MANIFEST_FILE);
  const text = await host.readFile(file);
  if (text === undefined)
    throw new Error(`${file} not found: build the bundle first (node --import tsx scripts/build-bundle.mts)`);
  const parsed = BundleManifest.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: key ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
