import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors/index.js';

export type Location =
  { scheme: 'file'; path: string } | { scheme: 's3'; bucket: string; key: string } | { scheme: 'http'; url: string };

/** Parse a storage URI of the contract: plain path, file://, s3://bucket/key, http(s)://. */
export function parseUri(uri: string): Location {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    if (bucket === '') throw new UsageError(`${uri}: an s3:// URI needs a bucket (s3://bucket/key)`);
    return { scheme: 's3', bucket, key: slash === -1 ? '' : rest.slice(slash + 1) };
  }
  if (uri.startsWith('http://') || uri.startsWith('https://')) return { scheme: 'http', url: uri };
  if (uri.startsWith('file://')) return { scheme: 'file', path: fileURLToPath(uri) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new UsageError(`${uri}: unsupported URI scheme (use a path, file://, s3:// or http(s)://)`);
  }
  if (uri === '') throw new UsageError('empty URI');
  return { scheme: 'file', path: uri };
}

/** Join a prefix and relative parts with exactly one slash between them. */
export function joinUri(prefix: string, ...parts: string[]): string {
  let out = prefix.replace(/\/+$/, '');
  for (const part of parts) out += '/' + part.replace(/^\/+/, '');
  return out;
}

/** The last path segment of a URI (without a trailing slash). */
export function baseName(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
