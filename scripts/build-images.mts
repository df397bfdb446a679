#!/usr/bin/env -S npx tsx
// Builds the two images (images/tokenizer: the Ray image, images/submitter), pushes them, and
// points the chosen overlays at them through kustomize's `images:` field, so no manifest is edited
// by hand. Base image pins come from versions.yaml and are passed as build arguments.
//
//   npx tsx scripts/build-images.mts --registry docker.io/<user> [--tag T] [--overlay prod] [--dry-run]
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parse, parseDocument } from 'yaml';
import { z } from 'zod';
import { main, runScript } from './lib/cli.js';
import { UsageError } from './lib/errors.js';
import type { Host } from './lib/host.js';
import type { ScriptIO } from './lib/run.js';

const spec = {
  name: 'build-images',
  usage: `
Usage: npx tsx scripts/build-images.mts --registry REGISTRY [options]

Builds images/tokenizer/Dockerfile -> REGISTRY/tokenize-wiki:TAG and
images/submitter/Dockerfile -> REGISTRY/tokenize-wiki-submitter:TAG from the repository root,
pushes both, then sets them in apps/wiki-tokenizer/overlays/OVERLAY/kustomization.yaml (images:).
Commit that change; pause the runs, sync the app (the RayCluster recreates its pods with the new
image), then resume them (docs/gitops.md, Images).

  --registry REG     where to push, e.g. docker.io/<user> or registry.example.com/team (required)
  --tag TAG          immutable image tag: a commit id or vX.Y.Z (default: the current commit,
                     git rev-parse --short=12 HEAD)
  --overlay NAME     overlay to point at the new images; repeatable (default: prod)
  --no-push          build only; still updates the overlays (for a registry-less test cluster)
  --platform P       docker build --platform (default: linux/amd64)
  --dry-run          print the commands and the overlay changes instead of running them
  -h, --help         this text
`,
  options: {
    registry: { type: 'string' },
    tag: { type: 'string' },
    overlay: { type: 'string', multiple: true },
    'no-push': { type: 'boolean' },
    platform: { type: 'string' },
  },
} as const;

const ImagePins = z.looseObject({
  ray: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected MAJOR.MINOR.PATCH'),
  python: z.string().regex(/^\d+\.\d+$/, 'expected MAJOR.MINOR'),
  node: z.string().regex(/^\d+$/, 'expected a Node.js major version'),
  nodeImage: z.string().regex(/^\d+\.\d+\.\d+-[a-z0-9-]+$/, 'expected a node image tag like 26.12.1-bookworm-slim'),
  nativeBuildImage: z.string().regex(/^[a-z]+(?:-\d{8})?-slim$/, 'expected a Debian image tag like trixie-slim'),
});
export type ImagePins = z.infer<typeof ImagePins>;

/** The base-image pins the Dockerfiles take as build arguments. */
export function loadImagePins(repoRoot: string): ImagePins {
  const file = join(repoRoot, 'versions.yaml');
  const parsed = ImagePins.safeParse(parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${file}: key ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  if (!parsed.data.nodeImage.startsWith(`${parsed.data.node}.`)) {
    throw new UsageError(`${file}: key nodeImage: ${parsed.data.nodeImage} is not Node.js ${parsed.data.node}`);
  }
  return parsed.data;
}

export interface ImageBuild {
  /** Logical name used in the manifests (kustomize `images[].name`). */
  name: string;
  dockerfile: string;
  /** Full reference without the tag. */
  repository: string;
  tag: string;
  buildArgs: Record<string, string>;
}

/** Our Dockerfiles by kustomize image name, with the build arguments that carry the versions.yaml pins. */
export function dockerfileBuilds(pins: ImagePins): Pick<ImageBuild, 'name' | 'dockerfile' | 'buildArgs'>[] {
  const nodeArg = { NODE_IMAGE: pins.nodeImage };
  return [
    {
      name: 'tokenize-wiki',
      dockerfile: 'images/tokenizer/Dockerfile',
      buildArgs: {
        RAY_VERSION: pins.ray,
        PYTHON_TAG: `py${pins.python.replace('.', '')}`,
        NATIVE_BUILD_IMAGE: pins.nativeBuildImage,
        ...nodeArg,
      },
    },
    { name: 'tokenize-wiki-submitter', dockerfile: 'images/submitter/Dockerfile', buildArgs: nodeArg },
  ];
}

/** The images to build and push as REGISTRY/<name>:TAG. */
export function imageBuilds(registry: string, tag: string, pins: ImagePins): ImageBuild[] {
  return dockerfileBuilds(pins).map((b) => ({ ...b, repository: `${registry}/${b.name}`, tag }));
}

const REGISTRY = /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function checkRegistry(registry: string | undefined): string {
  if (!registry) throw new UsageError('--registry is required, e.g. --registry docker.io/<user>');
  const trimmed = registry.replace(/\/+$/, '');
  if (!REGISTRY.test(trimmed))
    throw new UsageError(`--registry ${registry}: not a registry/namespace like docker.io/<user>`);
  return trimmed;
}

/**
 * A tag that names one build for good: a commit id (7-40 hex digits) or a release version. Nodes
 * pull with IfNotPresent, so a re-pushed moving tag (latest, dev, prod) never reaches a node that
 * already has an image under that name.
 */
export function isImmutableTag(tag: string): boolean {
  return /^[0-9a-f]{7,40}$/.test(tag) || /^v?\d+\.\d+\.\d+$/.test(tag);
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new UsageError(`--tag ${tag}: not a valid image tag`);
  if (!isImmutableTag(tag))
    throw new UsageError(
      `--tag ${tag}: use an immutable tag, a commit id or a version like v1.2.3 (the default is the commit)`,
    );
  return tag;
}

/** The docker commands for one image; the build context is the repository root. */
export function dockerCommands(build: ImageBuild, repoRoot: string, platform: string, push: boolean): string[][] {
  const ref = `${build.repository}:${build.tag}`;
  const args = Object.entries(build.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  const cmds = [
    ['docker', 'build', '--platform', platform, '-f', join(repoRoot, build.dockerfile), ...args, '-t', ref, repoRoot],
  ];
  if (push) cmds.push(['docker', 'push', ref]);
  return cmds;
}

/**
 * Returns the kustomization text with `images:` entries for the given builds set (added or
 * replaced by name); every other line, comments included, stays as it was.
 */
export function setOverlayImages(
  kustomization: string,
  builds: readonly ImageBuild[],
  file = 'kustomization.yaml',
): string {
  const doc = parseDocument(kustomization);
  if (doc.errors.length > 0)
    throw new UsageError(`${file}: ${doc.errors[0]?.message.split('\n')[0] ?? 'invalid YAML'}`);
  const current: unknown = doc.get('images');
  const list = z
    .array(z.looseObject({ name: z.string() }))
    .optional()
    .safeParse(current === undefined ? undefined : (doc.toJS() as { images?: unknown }).images);
  if (!list.success) throw new UsageError(`${file}: key images: expected a list of {name, newName, newTag}`);
  const entries = [...(list.data ?? [])];
  for (const b of builds) {
    const entry = { name: b.name, newName: b.repository, newTag: b.tag };
    const at = entries.findIndex((e) => e.name === b.name);
    if (at >= 0) entries[at] = entry;
    else entries.push(entry);
  }
  doc.set('images', doc.createNode(entries));
  return doc.toString();
}

async function currentCommit(host: Host): Promise<string> {
  const r = await host.probe(['git', 'rev-parse', '--short=12', 'HEAD']);
  if (r.exitCode !== 0) throw new UsageError('--tag not given and git rev-parse HEAD failed (not a git checkout?)');
  return r.stdout.trim();
}

export function buildImages(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    const registry = checkRegistry(flags.registry);
    const tag = checkTag(flags.tag ?? (await currentCommit(host)));
    const overlays = flags.overlay ?? ['prod'];
    const overlayFiles = overlays.map((name) => {
      if (!/^[a-z0-9-]+$/.test(name)) throw new UsageError(`--overlay ${name}: not an overlay name`);
      return { name, file: join(io.repoRoot, 'apps/wiki-tokenizer/overlays', name, 'kustomization.yaml') };
    });
    // Read and rewrite every overlay before building, so a bad overlay fails in seconds.
    const updates: { file: string; text: string }[] = [];
    const builds = imageBuilds(registry, tag, loadImagePins(io.repoRoot));
    for (const o of overlayFiles) {
      const text = await host.readFile(o.file);
      if (text === undefined) throw new UsageError(`--overlay ${o.name}: ${o.file} does not exist`);
      updates.push({ file: o.file, text: setOverlayImages(text, builds, o.file) });
    }
    const platform = flags.platform ?? 'linux/amd64';
    for (const b of builds) {
      log.info(`${b.name}: ${b.repository}:${b.tag} from ${b.dockerfile}`);
      for (const cmd of dockerCommands(b, io.repoRoot, platform, flags['no-push'] !== true)) await host.exec(cmd);
    }
    for (const u of updates) await host.writeFile(u.file, u.text);
    const msg = `overlays ${overlays.join(', ')} now use tag ${tag}: commit apps/wiki-tokenizer/overlays, pause the runs, sync the wiki-tokenizer app`;
    if (host.dryRun) out(`# ${msg}`);
    else log.info(msg);
  });
}

await main(import.meta.url, buildImages);
