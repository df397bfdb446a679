import { FileStore } from './file.js';
import { LazyStore } from './lazy.js';
import type { HttpOptions } from './http.js';
import type { Store } from './types.js';
import { parseUri } from './uri.js';

export type { Store, ObjectInfo, ByteRange, Body } from './types.js';
export { parseUri, joinUri, baseName, type Location } from './uri.js';
export { removeStaleTemps } from './file.js';
export { s3ErrorName, s3ErrorStatus, s3Reason } from './s3-errors.js';

const stores: Partial<Record<'file' | 's3' | 'http', Store>> = {};
let httpSettings: Partial<HttpOptions> = {};

/** Settings a command passes to the HTTP store (`stage --user-agent`); they win over the environment's. */
export function configureHttp(settings: Partial<HttpOptions>): void {
  httpSettings = { ...settings };
  delete stores.http; // the next http URI gets a store with these settings
}

/** The store that serves a URI's scheme (one instance per scheme per process). */
export function storeFor(uri: string): Store {
  const scheme = parseUri(uri).scheme;
  let store = stores[scheme];
  if (!store) {
    store =
      scheme === 'file'
        ? new FileStore()
        : scheme === 's3'
          ? new LazyStore(async () => new (await import('./s3.js')).S3Store())
          : new LazyStore(async () => {
              const { HttpStore, httpOptionsFromEnv } = await import('./http.js');
              return new HttpStore({ ...httpOptionsFromEnv(process.env), ...httpSettings });
            });
    stores[scheme] = store;
  }
  return store;
}

/** Read a whole (small) object: manifests, markers, run state. */
export async function readBytes(uri: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storeFor(uri).read(uri)) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export async function readText(uri: string): Promise<string> {
  return (await readBytes(uri)).toString('utf8');
}
