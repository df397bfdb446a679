import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Manifest } from '../manifest/index.js';
import { shardKeys, dtypeFor, encodeIdx } from '../output/index.js';
import { joinUri, storeFor } from '../storage/index.js';
import type { BatchResult } from '../tokenize/index.js';
import type { FileRef, MarkerFiles } from './marker.js';

/** One object being uploaded as a stream, hashed and counted on the way. */
class Upload {
  private readonly body = new PassThrough({ highWaterMark: 4 << 20 });
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private readonly done: Promise<void>;

  constructor(
    prefix: string,
    private readonly key: string,
  ) {
    const uri = joinUri(prefix, key);
    this.done = storeFor(uri).write(uri, this.body);
    this.done.catch(() => {}); // awaited in close(); avoid an unhandled rejection while batches are still running
  }

  async write(bytes: Uint8Array): Promise<void> {
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.hash.update(chunk);
    this.bytes += chunk.length;
    // A failed upload stops reading the body, so 'drain' never comes: wait for whichever happens first.
    if (!this.body.write(chunk))
      await Promise.race([new Promise((resolve) => this.body.once('drain', resolve)), this.done]);
  }

  async close(): Promise<FileRef> {
    this.body.end();
    await this.done;
    return { key: this.key, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  async abort(error: Error): Promise<void> {
    this.body.destroy(error);
    await this.done.catch(() => {});
  }
}

/**
 * The files of one task's shard, written as its batches arrive (in batch order). `jsonl`: the rows' gzip members
 * are the shard. `megatron`: token bytes stream to `.bin`, the metadata rows to `.meta.jsonl.gz`, and the `.idx`
 * (12 bytes a page) is written last from the lengths, once the pages are all known.
 */
export class ShardWriter {
  private readonly rows: Upload;
  private readonly bin: Upload | undefined;
  private readonly lengths: number[] = [];

  constructor(
    private readonly manifest: Manifest,
    private readonly outputPrefix: string,
    private readonly taskId: string,
  ) {
    const keys = shardKeys(manifest.output_format, taskId);
    if (manifest.output_format === 'jsonl') {
      this.rows = new Upload(outputPrefix, keys.shard);
    } else {
      this.bin = new Upload(outputPrefix, keys.shard);
      this.rows = new Upload(outputPrefix, keys.meta as string);
    }
  }

  async write(result: BatchResult): Promise<void> {
    if (this.bin) {
      const sequences = result.sequences;
      if (!sequences) throw new Error('a megatron task got a batch without token sequences');
      await this.bin.write(sequences.bin);
      for (const length of sequences.lengths) this.lengths.push(length);
    }
    await this.rows.write(result.member);
  }

  /** Wait until every file is durable; returns what the marker records of them. */
  async close(): Promise<MarkerFiles> {
    if (!this.bin) return { shard: await this.rows.close() };
    const [shard, meta] = await Promise.all([this.bin.close(), this.rows.close()]);
    const dtype = dtypeFor(this.manifest.encoding);
    const idx = new Upload(this.outputPrefix, shardKeys('megatron', this.taskId).idx as string);
    await idx.write(encodeIdx(dtype, this.lengths));
    return { shard, megatron: { dtype, idx: await idx.close(), meta } };
  }

  async abort(error: Error): Promise<void> {
    await Promise.all([this.rows.abort(error), this.bin?.abort(error)]);
  }
}
