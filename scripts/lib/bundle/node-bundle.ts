// What a node installs from an air-gapped bundle (docs/bootstrap.md): the binaries of bin/, the Debian packages
// of debs/ and the image archives of images/. The bundle is an input of the script (like this checkout), so it
// is read directly; the host is changed only through the steps.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { NODE_DEBS } from './debs.js';

/** Node binaries bootstrap-node installs to /usr/local/bin. */
export const NODE_BINARIES = [
  'kubelet',
  'kubeadm',
  'kubectl',
  'containerd',
  'containerd-shim-runc-v2',
  'ctr',
  'crictl',
] as const;

export interface DebFile {
  file: string;
  package: string;
  version: string;
  arch: string;
}

export interface BundleImage {
  file: string;
  /** The name containerd gives the image on import (`io.containerd.image.name`), e.g. registry.k8s.io/pause:3.10.1. */
  name: string;
}

export interface NodeBundle {
  dir: string;
  binaries: string[];
  debs: DebFile[];
  images: BundleImage[];
}

/** `apt-get download` names files PACKAGE_VERSION_ARCH.deb, with the version's ':' written as %3a. */
export function parseDebFileName(file: string): DebFile | undefined {
  const m = /^([a-z0-9][a-z0-9+.-]*)_([^_]+)_([a-z0-9-]+)\.deb$/.exec(file);
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  return { file, package: m[1], version: decodeURIComponent(m[2]), arch: m[3] };
}

/** Reads one member of a tar archive by walking its 512-byte headers (file data is skipped, not read). */
export function tarMember(file: string, member: string): Buffer | undefined {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(512);
    for (let offset = 0; readSync(fd, header, 0, 512, offset) === 512 && header[0] !== 0;) {
      const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '').replace(/^\.\//, '');
      const size = Number.parseInt(header.toString('utf8', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
      if (name === member) {
        const data = Buffer.alloc(size);
        readSync(fd, data, 0, size, offset + 512);
        return data;
      }
      offset += 512 + Math.ceil(size / 512) * 512;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const OciIndex = z.object({
  manifests: z.array(z.object({ annotations: z.record(z.string(), z.string()).optional() })).min(1),
});

/** The image name of an OCI archive, from its index.json. */
export function imageName(file: string): string {
  const raw = tarMember(file, 'index.json');
  if (!raw) throw new UsageError(`${file}: no index.json (not an OCI archive)`);
  const parsed = OciIndex.safeParse(JSON.parse(raw.toString('utf8')));
  const name = parsed.success ? parsed.data.manifests[0]?.annotations?.['io.containerd.image.name'] : undefined;
  if (!name) throw new UsageError(`${file}: index.json names no image (annotation io.containerd.image.name)`);
  return name;
}

function list(dir: string, suffix: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(suffix))
        .sort()
    : [];
}

/** The images bundle.json lists (written by scripts/build-bundle.mts when every archive was built). */
const ListedImages = z.looseObject({ images: z.array(z.object({ name: z.string(), file: z.string() })).optional() });

/**
 * bundle.json, not the folder listing, says which images a bundle holds: a folder copied or read while its
 * archives were still being written looks complete, and a node bootstrapped from it lacks images without a word
 * (a node bootstrapped during a bundle build had 10 of 17). Empty when bundle.json lists no images to compare with.
 */
function listedImageProblems(dir: string, found: readonly BundleImage[]): string[] {
  const manifest = join(dir, 'bundle.json');
  if (!existsSync(manifest)) return [];
  const parsed = ListedImages.safeParse(JSON.parse(readFileSync(manifest, 'utf8')));
  if (!parsed.success) return [`${manifest}: key images: expected a list of {name, file}`];
  const listed = parsed.data.images;
  if (listed === undefined) return [];
  const byFile = new Map(found.map((i) => [`images/${i.file}`, i.name]));
  const problems: string[] = [];
  for (const { name, file } of listed) {
    const have = byFile.get(file);
    if (have === undefined) problems.push(`bundle.json lists ${name} but ${file} is missing`);
    else if (have !== name) problems.push(`bundle.json lists ${file} as ${name}, its index.json names ${have}`);
  }
  const unlisted = [...byFile.keys()].filter((f) => !listed.some((l) => l.file === f));
  if (unlisted.length)
    problems.push(`bundle.json does not list ${unlisted.join(', ')} (written before them: rebuild bundle.json)`);
  return problems;
}

/** Reads and checks a bundle folder; the error names everything missing, so one fix suffices. */
export function readNodeBundle(dir: string): NodeBundle {
  if (!existsSync(dir)) throw new UsageError(`--bundle ${dir}: no such folder`);
  const problems: string[] = [];
  const binaries = NODE_BINARIES.filter((b) => existsSync(join(dir, 'bin', b)));
  const missingBins = NODE_BINARIES.filter((b) => !binaries.includes(b));
  if (missingBins.length) problems.push(`bin/ lacks ${missingBins.join(', ')}`);
  const debs: DebFile[] = [];
  for (const f of list(join(dir, 'debs'), '.deb')) {
    const deb = parseDebFileName(f);
    if (deb) debs.push(deb);
    else problems.push(`debs/${f} is not named PACKAGE_VERSION_ARCH.deb`);
  }
  const missingDebs = NODE_DEBS.filter((p) => !debs.some((d) => d.package === p));
  if (missingDebs.length) problems.push(`debs/ lacks ${missingDebs.join(', ')}`);
  const images: BundleImage[] = [];
  for (const f of list(join(dir, 'images'), '.oci.tar')) {
    try {
      images.push({ file: f, name: imageName(join(dir, 'images', f)) });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (images.length === 0) problems.push('images/ holds no *.oci.tar');
  problems.push(...listedImageProblems(dir, images));
  if (problems.length)
    throw new UsageError(`--bundle ${dir}: ${problems.join('; ')} (build it with scripts/build-bundle.mts)`);
  return { dir, binaries, debs, images };
}

/** The part of bundle.json (written by scripts/build-bundle.mts) a node checks: every file with its sha256. */
const BundleFiles = z.looseObject({ files: z.array(z.looseObject({ path: z.string(), sha256: z.string() })) });

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Files the node installs whose sha256 differs from bundle.json (a copy cut short or altered on its way to an
 * air-gapped site); undefined when the bundle has no bundle.json to check against.
 */
export async function corruptFiles(bundle: NodeBundle): Promise<string[] | undefined> {
  const manifest = join(bundle.dir, 'bundle.json');
  if (!existsSync(manifest)) return undefined;
  const parsed = BundleFiles.safeParse(JSON.parse(readFileSync(manifest, 'utf8')));
  if (!parsed.success)
    throw new UsageError(`${manifest}: no files list with sha256 (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  const expected = new Map(parsed.data.files.map((f) => [f.path, f.sha256]));
  const used = [
    ...bundle.binaries.map((b) => `bin/${b}`),
    ...bundle.debs.map((d) => `debs/${d.file}`),
    ...bundle.images.map((i) => `images/${i.file}`),
  ];
  const bad: string[] = [];
  for (const path of used) {
    const want = expected.get(path);
    if (want === undefined || (await sha256(join(bundle.dir, path))) !== want) bad.push(path);
  }
  return bad;
}
