import type { Readable } from 'node:stream';
import type { Body, ByteRange, ObjectInfo, Store } from './types.js';

/**
 * A store whose implementation is imported on first use: the S3 SDK and undici are slow to load,
 * which every command working on local files would otherwise pay at start-up.
 */
export class LazyStore implements Store {
  private store?: Promise<Store>;
  constructor(private readonly load: () => Promise<Store>) {}

  private get(): Promise<Store> {
    this.store ??= this.load();
    return this.store;
  }

  async stat(uri: string): Promise<ObjectInfo | undefined> {
    return (await this.get()).stat(uri);
  }

  async read(uri: string, range?: ByteRange): Promise<Readable> {
    return (await this.get()).read(uri, range);
  }

  async write(uri: string, body: Body): Promise<void> {
    return (await this.get()).write(uri, body);
  }

  async writeIfAbsent(uri: string, body: Buffer | string): Promise<boolean> {
    return (await this.get()).writeIfAbsent(uri, body);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* (await this.get()).list(prefix);
  }

  async delete(uri: string): Promise<void> {
    return (await this.get()).delete(uri);
  }
}
