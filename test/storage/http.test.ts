import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpStore } from '../../src/storage/http.js';
import { RETRY } from '../../src/storage/retry.js';
import { removeDir, snapshot, tempDir } from '../core/helpers.js';
import { CLI_TEST_TIMEOUT, cliOk } from '../harness/cli.js';

/**
 * A static file server on 127.0.0.1 with Range support and autoindex pages (what dump mirrors serve). `dropAfter`
 * makes the next N GET responses of big enough bodies break off mid-transfer, like a flaky mirror.
 */
class DumpServer {
  readonly requests: Array<{ path: string; range?: string; dropped: boolean }> = [];
  drops = 0;
  dropAfter = 20_000;
  /** Answer HEAD without Content-Length (some mirrors do), and optionally ignore Range too. */
  headWithoutLength = false;
  ignoreRanges = false;
  /** Answer every request with 503, like a mirror that is down. */
  unavailable = false;
  private server?: Server;
  constructor(private readonly root: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      if (this.unavailable) {
        this.requests.push({ path, range: req.headers.range, dropped: false });
        res.writeHead(503).end();
        return;
      }
      const file = join(this.root, path);
      const stat = statSync(file, { throwIfNoEntry: false });
      if (!stat) {
        res.writeHead(404).end();
        return;
      }
      if (stat.isDirectory()) {
        const links = readdirSync(file).map((name) => `<a href="${encodeURIComponent(name)}">${name}</a>`);
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end(`<html><body><a href="../">../</a>\n${links.join('\n')}</body></html>`);
        return;
      }
      const headers = {
        'accept-ranges': 'bytes',
        etag: `"${stat.size}-${Math.round(stat.mtimeMs)}"`,
        'last-modified': stat.mtime.toUTCString(),
      };
      if (req.method === 'HEAD') {
        res.writeHead(200, this.headWithoutLength ? headers : { ...headers, 'content-length': stat.size }).end();
        return;
      }
      let start = 0;
      let end = stat.size - 1;
      const range = this.ignoreRanges ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range && range[2] !== '' && Number(range[2]) < Number(range[1])) {
        // RFC 9110: an invalid range is ignored (the whole file is sent), which ranged readers must notice.
      } else if (range && Number(range[1]) >= stat.size) {
        this.requests.push({ path, range: req.headers.range, dropped: false });
        res.writeHead(416, { 'content-range': `bytes */${stat.size}` }).end();
        return;
      } else if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), stat.size - 1) : stat.size - 1;
        res.writeHead(206, {
          ...headers,
          'content-length': end - start + 1,
          'content-range': `bytes ${start}-${end}/${stat.size}`,
        });
      }
      if (!res.headersSent) res.writeHead(200, { ...headers, 'content-length': stat.size });
      const drop = this.drops > 0 && end - start + 1 > this.dropAfter;
      this.requests.push({ path, range: req.headers.range, dropped: drop });
      if (drop) {
        this.drops--;
        // Send part of the body, then cut the connection without finishing the response.
        res.write(readFileSync(file).subarray(start, start + this.dropAfter), () => res.socket?.destroy());
        return;
      }
      createReadStream(file, { start, end }).pipe(res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

const LEGACY = 'httpwiki-20261122-cirrussearch-content.json.gz';
const PARTS = 'cirrus_search_index/20261122/index_name=httpwiki_content';

describe('HTTP store against a local HTTP server with Range support', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  let server: DumpServer;
  let base: string;
  beforeAll(async () => {
    dir = tempDir('http');
    await cliOk([
      'synth',
      '--docs',
      '120',
      '--members',
      '2',
      '--seed',
      '31',
      '--wiki',
      'httpwiki',
      '--out',
      join(dir, 'www', LEGACY),
    ]);
    await cliOk([
      'synth',
      '--docs',
      '80',
      '--parts',
      '2',
      '--seed',
      '32',
      '--wiki',
      'httpwiki',
      '--out',
      join(dir, 'www', PARTS),
    ]);
    server = new DumpServer(join(dir, 'www'));
    base = await server.start();
  });
  afterAll(async () => {
    await server.stop();
    removeDir(dir);
  });

  it('stats files (size, etag) and reports a missing one as absent', async () => {
    const store = new HttpStore();
    const info = await store.stat(`${base}/${LEGACY}`);
    expect(info?.size).toBe(statSync(join(dir, 'www', LEGACY)).size);
    expect(info?.etag).toMatch(/^"\d+-\d+"$/);
    expect(await store.stat(`${base}/nope.json.gz`)).toBeUndefined();
    await expect(store.read(`${base}/nope.json.gz`).then(readAll)).rejects.toThrow(
      /nope\.json\.gz: not found \(HTTP 404\)/,
    );
  });

  it('takes the size from a ranged GET when HEAD has no Content-Length, and names the URL when neither gives one', async () => {
    const store = new HttpStore();
    const url = `${base}/${LEGACY}`;
    server.headWithoutLength = true;
    try {
      expect((await store.stat(url))?.size).toBe(statSync(join(dir, 'www', LEGACY)).size);
      server.ignoreRanges = true;
      await expect(store.stat(url)).rejects.toThrow(
        new RegExp(`${LEGACY.replace(/\./g, '\\.')}: the server reports no size`),
      );
    } finally {
      server.headWithoutLength = false;
      server.ignoreRanges = false;
    }
  });

  it('reads byte ranges, and resumes a whole read and a ranged read when the connection drops mid-transfer', async () => {
    const store = new HttpStore();
    const url = `${base}/${LEGACY}`;
    const bytes = readFileSync(join(dir, 'www', LEGACY));
    expect((await readAll(await store.read(url, { start: 100, end: 5000 }))).equals(bytes.subarray(100, 5000))).toBe(
      true,
    );

    server.requests.length = 0;
    server.drops = 2;
    expect((await readAll(await store.read(url))).equals(bytes)).toBe(true);
    expect(server.requests.filter((r) => r.dropped)).toHaveLength(2);
    // Each resumption asks for the rest, from the first byte not yet received.
    expect(server.requests.map((r) => r.range)).toEqual([
      undefined,
      `bytes=${server.dropAfter}-`,
      `bytes=${2 * server.dropAfter}-`,
    ]);

    server.requests.length = 0;
    server.drops = 1;
    const [start, end] = [7_000, bytes.length - 3_000];
    expect((await readAll(await store.read(url, { start, end }))).equals(bytes.subarray(start, end))).toBe(true);
    expect(server.requests.map((r) => r.range)).toEqual([
      `bytes=${start}-${end - 1}`,
      `bytes=${start + server.dropAfter}-${end - 1}`,
    ]);
  });

  it('retries a server that stays unavailable in one layer: RETRY.attempts requests, not attempts × resumes', async () => {
    const store = new HttpStore();
    server.requests.length = 0;
    server.unavailable = true;
    try {
      await expect(store.read(`${base}/${LEGACY}`).then(readAll)).rejects.toThrow(/HTTP 503/);
    } finally {
      server.unavailable = false;
    }
    expect(server.requests).toHaveLength(RETRY.attempts);
  });

  it('ends a read the consumer destroys without sending another request (not mistaken for a dropped connection)', async () => {
    const store = new HttpStore();
    server.requests.length = 0;
    const stream = await store.read(`${base}/${LEGACY}`, { start: 0, end: 200_000 });
    for await (const chunk of stream) {
      expect((chunk as Uint8Array).byteLength).toBeGreaterThan(0);
      break;
    }
    const other = await store.read(`${base}/${LEGACY}`, { start: 10, end: 150_000 });
    other.once('error', () => {}); // the consumer's own error, expected
    other.once('data', () => other.destroy(new Error('aborted by the consumer')));
    await new Promise((resolve) => other.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // past the first retry's back-off
    expect(server.requests.map((r) => r.range)).toEqual(['bytes=0-199999', 'bytes=10-149999']);
    // An empty range needs no request at all (`bytes=N-(N-1)` is invalid, servers send the whole file).
    expect((await readAll(await store.read(`${base}/${LEGACY}`, { start: 500, end: 500 }))).length).toBe(0);
    expect(server.requests).toHaveLength(2);
  });

  it('runs both dump layouts from http:// (autoindex folder, flaky connections) with the same shards as from local files', async () => {
    const local = join(dir, 'local-out');
    const remote = join(dir, 'http-out');
    const common = ['--max-docs-per-task', '30', '--concurrency', '2'];
    await cliOk([
      'run',
      '--dump',
      join(dir, 'www', LEGACY),
      '--dump',
      join(dir, 'www', PARTS),
      '--output-dir',
      local,
      ...common,
    ]);
    server.requests.length = 0;
    server.drops = 4;
    server.dropAfter = 8_000;
    const result = await cliOk([
      'run',
      '--dump',
      `${base}/${LEGACY}`,
      '--dump',
      `${base}/${PARTS}/`,
      '--output-dir',
      remote,
      ...common,
    ]).catch((error: Error) => {
      throw new Error(`${error.message}\n--- requests\n${server.requests.map((r) => JSON.stringify(r)).join('\n')}`);
    });
    expect(result.stdout).toMatch(/verify: OK/);
    expect(server.requests.filter((r) => r.dropped).length).toBeGreaterThan(0);
    expect(server.requests.some((r) => r.range !== undefined)).toBe(true);
    const shards = (files: Map<string, { sha256: string }>): Array<[string, string]> =>
      [...files].filter(([name]) => name.startsWith('shards/')).map(([name, f]) => [name, f.sha256]);
    expect(shards(snapshot(remote))).toEqual(shards(snapshot(local)));
    expect(shards(snapshot(local)).length).toBeGreaterThan(4);
  });
});
