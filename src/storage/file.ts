import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, link, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { InputError } from '../errors/index.js';
import type { Body, ByteRange, ObjectInfo, Store } from './types.js';
import { parseUri } from './uri.js';

function pathOf(uri: string): string {
  const location = parseUri(uri);
  if (location.scheme !== 'file') throw new Error(`not a file URI: ${uri}`);
  return location.path;
}

function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Delete temp files a killed writer left beside `path` (their pid no longer runs); returns the removed paths.
 * A live writer's temp file is kept.
 */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const removed: string[] = [];
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || isRunning(Number(pid))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Write body to a fresh temp file next to `path`, fsynced, and return the temp path. */
async function writeTemp(path: string, body: Body): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  const source = typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([body]) : body;
  try {
    // flush: fsync before close, so the rename below never publishes a file whose bytes are not on disk.
    await pipeline(source, createWriteStream(temp, { flush: true }));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return temp;
}

export class FileStore implements Store {
  async stat(uri: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await stat(pathOf(uri));
      if (!info.isFile()) return undefined;
      return { uri, size: info.size, lastModified: info.mtime.toISOString() };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async read(uri: string, range?: ByteRange): Promise<Readable> {
    const path = pathOf(uri);
    // Open eagerly so a missing file is an error here, not later in the consumer's pipeline.
    const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new InputError(`${uri}: no such file`);
      if (error.code === 'EACCES') throw new InputError(`${uri}: permission denied`);
      throw error;
    });
    const end = range?.end === undefined ? undefined : range.end - 1;
    if (end !== undefined && end < (range?.start ?? 0)) {
      await handle.close();
      return Readable.from([]);
    }
    return createReadStream('', { fd: handle, start: range?.start, end, highWaterMark: 1 << 20 });
  }

  async write(uri: string, body: Body): Promise<void> {
    const path = pathOf(uri);
    await rename(await writeTemp(path, body), path);
  }

  async writeIfAbsent(uri: string, body: Buffer | string): Promise<boolean> {
    const path = pathOf(uri);
    const temp = await writeTemp(path, body);
    try {
      // link(2) fails if the target exists: an atomic create-if-absent with complete content.
      await link(temp, path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await unlink(temp);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const path = pathOf(prefix);
    const isDir =
      prefix.endsWith('/') ||
      (await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      ));
    const dir = isDir ? path : dirname(path);
    const namePrefix = isDir ? '' : path.slice(dir.length + 1);
    yield* walk(dir, namePrefix, prefix.startsWith('file://') ? 'file://' : '');
  }

  async delete(uri: string): Promise<void> {
    await rm(pathOf(uri), { force: true });
  }
}

async function* walk(dir: string, namePrefix: string, scheme: string): AsyncIterable<ObjectInfo> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (!entry.name.startsWith(namePrefix) || entry.name.includes('.tmp-')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      yield* walk(full, '', scheme);
    } else if (entry.isFile()) {
      const info = await stat(full);
      yield { uri: scheme + full, size: info.size, lastModified: info.mtime.toISOString() };
    }
  }
}
