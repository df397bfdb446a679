// A real HTTP server on 127.0.0.1 serving a folder the way dump mirrors do: Range requests, ETag and Last-Modified,
// autoindex pages. It records every request and connection, and can drop a connection or corrupt a body on demand.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServedRequest {
  method: string;
  path: string;
  range?: string;
  userAgent?: string;
}

export class DumpServer {
  readonly requests: ServedRequest[] = [];
  openConnections = 0;
  maxConnections = 0;
  bytesSent = 0;
  /** Paths whose next GET sends half of the body, then drops the connection. */
  readonly dropOnce = new Set<string>();
  /** Paths whose GETs send half of the body, then hang until the client goes away (a client killed mid-transfer). */
  readonly stall = new Set<string>();
  /** Paths whose bodies are served with one byte flipped in the middle (same length, so only a checksum notices). */
  readonly corrupt = new Set<string>();

  private constructor(
    private readonly server: Server,
    private readonly root: string,
    readonly origin: string,
  ) {}

  /** `chunkBytes` per write with a pause between writes, so that parallel transfers really overlap. */
  static async start(root: string, chunkBytes = 32 * 1024, host = '127.0.0.1', port = 0): Promise<DumpServer> {
    let self: DumpServer | undefined;
    const server = createServer((req, res) => {
      void self?.handle(req, res, chunkBytes).catch((error: Error) => {
        if (!res.headersSent) res.writeHead(500).end(error.message);
        else res.destroy();
      });
    });
    server.on('connection', (socket: Socket) => {
      if (!self) return;
      const s = self;
      s.openConnections += 1;

      s.maxConnections = Math.max(s.maxConnections, s.openConnections);
      socket.once('close', () => (s.openConnections -= 1));
    });
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    self = new DumpServer(server, root, `http://${host}:${(server.address() as AddressInfo).port}`);
    return self;
  }

  url(path: string): string {
    return `${this.origin}/${path.replace(/^\/+/, '')}`;
  }

  /** GET requests for a path (a file name matches any path ending in it). */
  gets(name: string): ServedRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && (r.path === name || r.path.endsWith('/' + name)));
  }

  resetCounts(): void {
    this.requests.length = 0;
    this.maxConnections = this.openConnections;
    this.bytesSent = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, chunkBytes: number): Promise<void> {
    const path = decodeURIComponent(new URL(req.url ?? '/', this.origin).pathname);
    this.requests.push({
      method: req.method ?? '',
      path,
      range: req.headers.range,
      userAgent: req.headers['user-agent'],
    });
    const file = join(this.root, path);
    const info = await stat(file).catch(() => undefined);
    if (!info) {
      res.writeHead(404).end('not found');
      return;
    }
    if (info.isDirectory()) {
      const entries = await readdir(file, { withFileTypes: true });
      const links = entries
        .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
        .map((n) => `<a href="${encodeURIComponent(n).replace(/%2F/g, '/')}">${n}</a>`);
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(`<html><body><pre><a href="../">../</a>\n${links.join('\n')}\n</pre></body></html>`);
      return;
    }
    const headers = {
      'accept-ranges': 'bytes',
      etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
      'last-modified': info.mtime.toUTCString(),
      'content-type': 'application/octet-stream',
    };
    let start = 0;
    let end = info.size; // exclusive
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] === '' ? info.size : Math.min(Number(range[2]) + 1, info.size);
      if (start >= info.size || end <= start) {
        res.writeHead(416, { 'content-range': `bytes */${info.size}` }).end();
        return;
      }
    }
    const status = range ? 206 : 200;
    res.writeHead(status, {
      ...headers,
      'content-length': String(end - start),
      ...(range ? { 'content-range': `bytes ${start}-${end - 1}/${info.size}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const bytes = await readFile(file);
    const middle = Math.floor(bytes.length / 2);
    if (this.corrupt.has(path)) bytes.writeUInt8((bytes.readUInt8(middle) ^ 0x55) & 0xff, middle);
    const stallAt = this.stall.has(path) ? start + Math.floor((end - start) / 2) : undefined;
    const dropAt = this.dropOnce.delete(path) ? start + Math.floor((end - start) / 2) : stallAt;
    for (let at = start; at < end; at += chunkBytes) {
      const stop = Math.min(at + chunkBytes, end, dropAt ?? end);
      if (stop > at) {
        res.write(bytes.subarray(at, stop));
        this.bytesSent += stop - at;
      }
      if (stallAt !== undefined && stop >= stallAt) {
        if (!res.destroyed) await new Promise((resolve) => res.once('close', resolve));
        return;
      }
      if (dropAt !== undefined && stop >= dropAt) {
        await sleep(20); // let the half body reach the client before the connection breaks
        res.socket?.destroy();
        return;
      }
      await sleep(1);
      if (res.destroyed) return;
    }
    res.end();
  }
}
