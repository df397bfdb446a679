import { InputError } from '../errors/index.js';
import { baseName, joinUri, storeFor, type ObjectInfo } from '../storage/index.js';

export type Compression = 'gzip' | 'bzip2';

/** One CirrusSearch dump file: a legacy .json.gz or one .json.bz2 part of the current layout. */
export interface DumpFile {
  uri: string;
  /** Stable name used in task ids, e.g. `enwiki-20261122-00007`. */
  name: string;
  wiki: string;
  compression: Compression;
  size: number;
  etag?: string;
  lastModified?: string;
}

const LEGACY = /^(?<wiki>[a-z0-9_]+)-(?<date>\d{8})-cirrussearch-content\.json\.gz$/;
const PART = /^(?<wiki>[a-z0-9_]+)_content-(?<date>\d{8})-(?<part>\d{5})\.json\.bz2$/;

/** Derive the dump's identity from its file name (both Wikimedia layouts; anything else by its base name). */
export function describeDumpFile(info: ObjectInfo): DumpFile {
  const name = baseName(info.uri);
  const compression: Compression | undefined = name.endsWith('.gz')
    ? 'gzip'
    : name.endsWith('.bz2')
      ? 'bzip2'
      : undefined;
  if (!compression) throw new InputError(`${info.uri}: not a dump file (expected .json.gz or .json.bz2)`);
  const legacy = LEGACY.exec(name)?.groups;
  const part = PART.exec(name)?.groups;
  const common = { uri: info.uri, compression, size: info.size, etag: info.etag, lastModified: info.lastModified };
  if (legacy) return { ...common, wiki: legacy.wiki as string, name: `${legacy.wiki}-${legacy.date}-legacy` };
  if (part) return { ...common, wiki: part.wiki as string, name: `${part.wiki}-${part.date}-${part.part}` };
  const stem = name.replace(/\.json\.(gz|bz2)$/, '').replace(/[^A-Za-z0-9_-]+/g, '_');
  return { ...common, wiki: stem.split(/[-_]/)[0] ?? stem, name: stem };
}

export interface ResolveOptions {
  /** Accept a parts folder that has no `_SUCCESS` (a dump still being written, or a partial copy). */
  allowIncompleteDump?: boolean;
}

/**
 * Expand `--dump` arguments into dump files, in a stable order: a file stands for itself; a folder or prefix of the
 * current layout stands for its `.json.bz2` parts and must hold `_SUCCESS`.
 */
export async function resolveDumps(uris: readonly string[], options: ResolveOptions = {}): Promise<DumpFile[]> {
  const files: DumpFile[] = [];
  for (const uri of uris) {
    const store = storeFor(uri);
    const direct = /\.json\.(gz|bz2)$/.test(uri) ? await store.stat(uri) : undefined;
    if (direct) {
      files.push(describeDumpFile(direct));
      continue;
    }
    if (/\.json\.(gz|bz2)$/.test(uri)) throw new InputError(`${uri}: dump file not found`);
    const folder = uri.endsWith('/') ? uri : uri + '/';
    const listed: ObjectInfo[] = [];
    let complete = false;
    for await (const info of store.list(folder)) {
      const name = baseName(info.uri);
      if (name === '_SUCCESS') complete = true;
      else if (name.endsWith('.json.bz2') || name.endsWith('.json.gz')) listed.push(info);
    }
    if (listed.length === 0) throw new InputError(`${uri}: no dump files (.json.gz / .json.bz2) found there`);
    if (!complete && !options.allowIncompleteDump) {
      throw new InputError(
        `${joinUri(uri, '_SUCCESS')}: missing, so the dump may be incomplete; wait for it or pass --allow-incomplete-dump`,
      );
    }
    files.push(...listed.map(describeDumpFile));
  }
  const names = new Set<string>();
  for (const file of files) {
    if (names.has(file.name)) throw new InputError(`${file.uri}: dump ${file.name} is named twice in --dump`);
    names.add(file.name);
  }
  return files;
}
