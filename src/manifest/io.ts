import { InputError, parseJson, parseWith } from '../errors/index.js';
import { readText, storeFor } from '../storage/index.js';
import { ManifestSchema, type Manifest } from './schema.js';

export async function readManifest(uri: string): Promise<Manifest> {
  if (!(await storeFor(uri).stat(uri)))
    throw new InputError(`${uri}: manifest not found (create it with \`tokenize-wiki manifest\`)`);
  return parseWith(ManifestSchema, parseJson(await readText(uri), uri), uri);
}

/** Byte-identical for the same dumps and parameters: no timestamps, stable key and task order. */
export function serializeManifest(manifest: Manifest): string {
  return JSON.stringify(manifest, null, 1) + '\n';
}

export async function writeManifest(uri: string, manifest: Manifest): Promise<void> {
  await storeFor(uri).write(uri, serializeManifest(manifest));
}

/** The manifest's folder: index files are referenced relative to it. */
export function manifestFolderOf(manifestUri: string): string {
  const slash = manifestUri.lastIndexOf('/');
  return slash === -1 ? '.' : manifestUri.slice(0, slash);
}
