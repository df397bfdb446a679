import { InputError } from '../errors/index.js';
import { resolveDumps, type ResolveOptions } from '../dumps/index.js';
import type { Logger } from '../observability/index.js';
import { storeFor } from '../storage/index.js';
import { scanDump } from './scan.js';
import { buildManifest, type ManifestOptions } from './build.js';
import { manifestFolderOf, readManifest, writeManifest } from './io.js';
import type { Manifest } from './schema.js';

/** Create the manifest of a set of dumps (one scan per dump) and write it with its index files. */
export async function createManifest(
  dumpUris: readonly string[],
  manifestUri: string,
  options: ManifestOptions & ResolveOptions,
  logger: Logger,
): Promise<Manifest> {
  const dumps = await resolveDumps(dumpUris, options);
  const folder = manifestFolderOf(manifestUri);
  const manifest = await buildManifest(dumps, options, (dump) => scanDump(dump, options, folder), logger);
  await writeManifest(manifestUri, manifest);
  logger.info({ manifest: manifestUri, tasks: manifest.totals.tasks, docs: manifest.totals.docs }, 'manifest written');
  return manifest;
}

/**
 * The manifest of a run: reuse the one at `manifestUri` if it exists (re-runs must not re-plan tasks), after checking
 * it was made for the same dumps and settings; create it otherwise.
 */
export async function ensureManifest(
  dumpUris: readonly string[],
  manifestUri: string,
  options: ManifestOptions & ResolveOptions,
  logger: Logger,
): Promise<Manifest> {
  if (!(await storeFor(manifestUri).stat(manifestUri))) return createManifest(dumpUris, manifestUri, options, logger);
  const manifest = await readManifest(manifestUri);
  const settings: Array<[string, unknown, unknown]> = [
    ['text_field', manifest.text_field, options.textField],
    ['encoding', manifest.encoding, options.encoding],
    ['append_eot', manifest.append_eot, options.appendEot],
    ['output_format', manifest.output_format, options.outputFormat],
    ['max_docs_per_task', manifest.max_docs_per_task, options.maxDocsPerTask],
  ];
  for (const [key, existing, wanted] of settings) {
    if (existing !== wanted) {
      throw new InputError(
        `${manifestUri}: the existing manifest has ${key}=${String(existing)}, this run asks for ${String(wanted)}; use another output prefix or remove the manifest`,
      );
    }
  }
  const dumps = await resolveDumps(dumpUris, options);
  const listed = new Set(manifest.dumps.map((d) => d.uri));
  const missing = dumps.filter((d) => !listed.has(d.uri));
  if (missing.length > 0 || dumps.length !== manifest.dumps.length) {
    throw new InputError(
      `${manifestUri}: the existing manifest covers other dumps than --dump (e.g. ${missing[0]?.uri ?? manifest.dumps[0]?.uri}); use another output prefix`,
    );
  }
  return manifest;
}
