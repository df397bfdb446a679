import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import type { Readable, Writable } from 'node:stream';
import { InputError, TaskFailure } from '../config/errors.js';
import type { Compression } from './layout.js';

/**
 * Pump compressed bytes into a decoder's input. Stops early (releasing the source, e.g. an HTTP connection) when the
 * decoder is destroyed because the consumer has all the docs it needs.
 */
async function feed(source: AsyncIterable<Uint8Array>, sink: Writable, counter: { bytes: number }): Promise<void> {
  for await (const chunk of source) {
    if (sink.destroyed || sink.writableEnded) break;
    counter.bytes += chunk.byteLength;
    if (!sink.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          sink.off('drain', done);
          sink.off('close', done);
          resolve();
        };
        sink.on('drain', done);
        sink.on('close', done);
      });
    }
  }
  if (!sink.destroyed) sink.end();
}

/** Node's zlib (native, off the main thread); accepts multi-member gzip as Wikimedia and pigz write it. */
export async function* gunzip(source: AsyncIterable<Uint8Array>, what: string, baseOffset = 0): AsyncIterable<Buffer> {
  const counter = { bytes: 0 };
  const inflater = createGunzip({ chunkSize: 256 * 1024 });
  const feeding = feed(source, inflater, counter).catch((error: Error) => inflater.destroy(error));
  try {
    for await (const chunk of inflater as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    throw new TaskFailure(
      `${what}: truncated or corrupt gzip data (compressed byte offset ~${baseOffset + counter.bytes}): ${(error as Error).message}`,
    );
  } finally {
    inflater.destroy();
    await feeding;
  }
}

/**
 * bzip2 through the `bzip2` CLI: the fastest single-thread decoder available to Node (measured: 32 MB/s vs 20 for
 * the WASM libbz2 build), and a separate process, so decoding runs in parallel with tokenizing.
 */
export async function* bunzip2(source: AsyncIterable<Uint8Array>, what: string, baseOffset = 0): AsyncIterable<Buffer> {
  const counter = { bytes: 0 };
  const child = spawn('bzip2', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new InputError('bzip2 is not installed (apt-get install bzip2)') : error),
    );
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  await spawned;
  const feeding = feed(source, child.stdin, counter).catch((error: Error) => {
    stderr ||= error.message;
    child.kill();
  });
  child.stdin.on('error', () => {}); // EPIPE when we stop reading early: expected
  let finished = false;
  try {
    for await (const chunk of child.stdout as Readable) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) {
      throw new TaskFailure(
        `${what}: truncated or corrupt bzip2 data (compressed byte offset ~${baseOffset + counter.bytes}): ${stderr.trim() || `bzip2 exited with ${code}`}`,
      );
    }
    finished = true;
  } finally {
    if (!finished) {
      child.kill();
      child.stdin.destroy();
    }
    await feeding;
  }
}

export function decoderFor(compression: Compression): typeof gunzip {
  return compression === 'gzip' ? gunzip : bunzip2;
}
