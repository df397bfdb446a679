import { TaskFailure } from '../errors/index.js';

const NEWLINE = 0x0a;

export interface DocRange {
  /** Decoded bytes to drop before the first doc (the distance from the access point to the task's first doc). */
  skipBytes: number;
  /** Line number and uncompressed offset of the task's first doc in the whole dump, for error messages. */
  firstLine: number;
  firstOffset: number;
  /** Docs to take; the reader stops pulling (and so stops decoding) right after the last one. */
  docCount: number;
}

export interface BatchLimits {
  maxDocs: number;
  maxBytes: number;
}

export interface RawBatch {
  /** Backed by its own ArrayBuffer, so it can be transferred to a worker without a copy. */
  bytes: Buffer;
  firstLine: number;
  firstOffset: number;
  docs: number;
}

/**
 * Cut a decoded dump stream into batches of whole docs (index line + document line). Batches end at doc boundaries
 * by count and size only, so the same task always yields the same batches, and so the same shard bytes.
 */
export async function* cutBatches(
  decoded: AsyncIterable<Buffer>,
  range: DocRange,
  limits: BatchLimits,
  what: string,
): AsyncIterable<RawBatch> {
  let toSkip = range.skipBytes;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let lines = 0; // lines completed in the current batch
  let batchLine = range.firstLine;
  let batchOffset = range.firstOffset;
  let docsDone = 0;

  const emit = (tail: Buffer): RawBatch => {
    // A fresh, exactly sized buffer (never Node's shared pool): it is transferred to a worker thread as is.
    const bytes = Buffer.from(new ArrayBuffer(partBytes + tail.length));
    let at = 0;
    for (const part of [...parts, tail]) at += part.copy(bytes, at);
    const batch = { bytes, firstLine: batchLine, firstOffset: batchOffset, docs: Math.ceil(lines / 2) };
    batchLine += lines;
    batchOffset += bytes.length;
    docsDone += batch.docs;
    parts = [];
    partBytes = 0;
    lines = 0;
    return batch;
  };

  for await (let chunk of decoded) {
    if (toSkip > 0) {
      if (chunk.length <= toSkip) {
        toSkip -= chunk.length;
        continue;
      }
      chunk = chunk.subarray(toSkip);
      toSkip = 0;
    }
    let start = 0;
    let search = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, search);
      if (newline === -1) break;
      search = newline + 1;
      lines++;
      if (lines % 2 !== 0) continue;
      const docs = docsDone + lines / 2;
      const full = lines / 2 >= limits.maxDocs || partBytes + (search - start) >= limits.maxBytes;
      if (full || docs >= range.docCount) {
        yield emit(chunk.subarray(start, search));
        start = search;
        if (docsDone >= range.docCount) return;
      }
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start)); // decoders hand out fresh buffers, so keeping a view is safe
      partBytes += chunk.length - start;
    }
  }
  if (partBytes > 0) {
    lines++; // a last line without a trailing newline
    yield emit(Buffer.alloc(0));
  }
  if (toSkip > 0 || docsDone < range.docCount) {
    throw new TaskFailure(
      `${what}: the dump ended after ${docsDone} of the task's ${range.docCount} docs (line ${batchLine}): truncated or changed dump`,
    );
  }
}
