/** Pull-based reader over an async iterable of bytes that tracks the file offset and allows push-back. */
export class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private readonly pushedBack: Buffer[] = [];
  private done = false;
  /** File offset of the next byte `next()` returns. */
  position: number;

  constructor(source: AsyncIterable<Uint8Array>, startOffset: number) {
    this.it = source[Symbol.asyncIterator]();
    this.position = startOffset;
  }

  /** The next non-empty chunk, or undefined at the end of the input. */
  async next(): Promise<Buffer | undefined> {
    const back = this.pushedBack.pop();
    if (back) {
      this.position += back.length;
      return back;
    }
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      if (r.value.length > 0) {
        this.position += r.value.length;
        return Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      }
    }
    return undefined;
  }

  /** Return the tail of the chunk most recently taken; it will be read again next. */
  unshift(buf: Buffer): void {
    if (buf.length === 0) return;
    this.pushedBack.push(buf);
    this.position -= buf.length;
  }

  async peekByte(): Promise<number | undefined> {
    const chunk = await this.next();
    if (chunk === undefined) return undefined;
    this.unshift(chunk);
    return chunk[0];
  }

  /** Exactly `n` bytes, or an error naming `what` and the offset where the input ended. */
  async readExactly(n: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const chunk = await this.next();
      if (chunk === undefined) {
        throw new GzipDataError(
          `truncated gzip input: ${what} needs ${n} bytes, input ends at byte offset ${this.position}`,
          this.position,
        );
      }
      const take = Math.min(n - have, chunk.length);
      parts.push(chunk.subarray(0, take));
      this.unshift(chunk.subarray(take));
      have += take;
    }
    return Buffer.concat(parts, n);
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

/** A gzip stream that is corrupt, truncated or followed by garbage. */
export class GzipDataError extends Error {
  constructor(
    message: string,
    /** Compressed byte offset reached when the problem was found. */
    readonly compressedOffset: number,
  ) {
    super(message);
    this.name = 'GzipDataError';
  }
}
