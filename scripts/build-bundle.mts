#!/usr/bin/env -S npx tsx
// Builds the air-gapped bundle on a host that reaches the package registries: everything a node
// needs to join the cluster with no internet, cached under <cache>/bundle/<kubernetes>/.
//
//   npx tsx scripts/build-bundle.mts [--cache DIR] [--overlay dev] [--dry-run]
import { homedir } from 'node:os';
import { join } from 'node:path';
import { main, runScript } from './lib/cli.js';
import { RefusalError } from './lib/errors.js';
import { loadVersions } from './lib/versions.js';
import type { ScriptIO } from './lib/run.js';
import { buildBundleImages } from './lib/bundle/images.js';
import { dockerfileBuilds, loadImagePins } from './build-images.mjs';

const spec = {
  name: 'build-bundle',
  usage: `
Usage: npx tsx scripts/build-bundle.mts [options]

Builds the air-gapped bundle into CACHE/bundle/<kubernetes version>/ (run as root):
  images/*.oci.tar   every container image the cluster runs, named as the manifests and kubeadm
                     name them (import on a node: ctr -n k8s.io images import FILE)
Images whose inputs are not built yet are listed as missing; the rest are built.

  --cache DIR        cache folder (default: $TW_CACHE_DIR or ~/.cache/tokenize-wiki)
  --overlay NAME     the wiki-tokenizer overlay whose images: names our two images (default: dev)
  --dry-run          print the commands instead of running them
  -h, --help         this text
`,
  options: {
    cache: { type: 'string' },
    overlay: { type: 'string' },
  },
} as const;

export function buildBundle(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    if (!host.dryRun && host.uid() !== 0) throw new RefusalError('run as root: buildah builds rootful images here');
    const cache = flags.cache ?? (io.env.TW_CACHE_DIR || join(homedir(), '.cache', 'tokenize-wiki'));
    const { kubernetes } = loadVersions(io.repoRoot);
    const dirs = { bundle: join(cache, 'bundle', kubernetes), work: join(cache, 'bundle', 'work') };
    const ours = dockerfileBuilds(loadImagePins(io.repoRoot));
    await buildBundleImages({ host, log, out, repoRoot: io.repoRoot, dirs, overlay: flags.overlay ?? 'dev', ours });
  });
}

await main(import.meta.url, buildBundle);
