import type { Readable } from 'node:stream';

export interface ObjectInfo {
  uri: string;
  size: number;
  /** Strong identity of the content where the store has one (S3/HTTP ETag); used to detect a changed dump. */
  etag?: string;
  lastModified?: string;
}

/** Half-open byte range [start, end); `end` omitted means to the end of the object. */
export interface ByteRange {
  start: number;
  end?: number;
}

export type Body = Buffer | string | Readable;

/** The one small interface every backend (file, s3, http) implements. */
export interface Store {
  stat(uri: string): Promise<ObjectInfo | undefined>;
  /** Stream bytes; interrupted transfers are resumed from the last byte received where the backend allows. */
  read(uri: string, range?: ByteRange): Promise<Readable>;
  /** Write so that readers never see a partial object: temp file + rename, or a (multipart) upload that completes. */
  write(uri: string, body: Body): Promise<void>;
  /** Create only if absent; false if the object already exists. The basis of leases. */
  writeIfAbsent(uri: string, body: Buffer | string): Promise<boolean>;
  /** Every object whose URI starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(uri: string): Promise<void>;
}
