import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import pRetry, { AbortError } from 'p-retry';
import { Agent, fetch, type RequestInit, type Response } from 'undici';
import { InputError, UsageError } from '../errors/index.js';
import { programVersion } from '../observability/index.js';
import { resumableRead } from './resumable.js';
import { isTransient, RETRY } from './retry.js';
import type { ByteRange, ObjectInfo, Store } from './types.js';

export interface HttpOptions {
  /** Wikimedia blocks generic library agents and asks for a contact ("name/version (contact)"); mirrors do not care. */
  userAgent: string;
  /** At most this many transfers (and connections) per host: dumps.wikimedia.org caps connections per client. */
  connectionsPerHost: number;
}

/** The settings' defaults, overridden by TOKENIZE_WIKI_USER_AGENT and TOKENIZE_WIKI_HTTP_CONNECTIONS. */
export function httpOptionsFromEnv(env: NodeJS.ProcessEnv): HttpOptions {
  const connections = env.TOKENIZE_WIKI_HTTP_CONNECTIONS;
  const connectionsPerHost = Number(connections ?? 2);
  if (!Number.isInteger(connectionsPerHost) || connectionsPerHost < 1) {
    throw new UsageError(
      `TOKENIZE_WIKI_HTTP_CONNECTIONS: expected a whole number ≥ 1, got ${JSON.stringify(connections)}`,
    );
  }
  return {
    userAgent:
      env.TOKENIZE_WIKI_USER_AGENT ??
      `tokenize-wiki/${programVersion} (set TOKENIZE_WIKI_USER_AGENT to add your contact)`,
    connectionsPerHost,
  };
}

/** At most `limit` concurrent transfers per host: dumps.wikimedia.org caps connections per client. */
class HostSlots {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  constructor(readonly limit: number) {}

  async acquire(host: string): Promise<() => void> {
    while ((this.active.get(host) ?? 0) >= this.limit) {
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(host) ?? [];
        queue.push(resolve);
        this.waiting.set(host, queue);
      });
    }
    this.active.set(host, (this.active.get(host) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active.set(host, (this.active.get(host) ?? 1) - 1);
      this.waiting.get(host)?.shift()?.();
    };
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    url: string,
  ) {
    super(`${url}: HTTP ${status}`);
  }
}

export class HttpStore implements Store {
  private readonly slots: HostSlots;

  /**
   * The slots bound requests, but a pool may open a new connection before it notices that a finished one is idle;
   * capping the pool's connections per origin makes the limit hold for connections too.
   */
  private readonly dispatcher: Agent;

  constructor(private readonly options: HttpOptions = httpOptionsFromEnv(process.env)) {
    this.slots = new HostSlots(options.connectionsPerHost);
    this.dispatcher = new Agent({ connections: options.connectionsPerHost });
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.retrying(url, init);
    } catch (error) {
      if (error instanceof InputError || error instanceof HttpStatusError) throw error;
      // fetch reports an unreachable host as a bare "fetch failed"; the cause holds the reason (ECONNREFUSED, …).
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new InputError(
        `${url}: cannot be read (${cause?.code ?? cause?.message ?? (error as Error).message}); check the URL and the network`,
      );
    }
  }

  private async retrying(url: string, init: RequestInit): Promise<Response> {
    return pRetry(
      async () => {
        const response = await fetch(url, {
          ...init,
          dispatcher: this.dispatcher,
          headers: { 'user-agent': this.options.userAgent, ...init.headers },
        });
        if (response.ok) return response;
        await response.body?.cancel();
        const error = new HttpStatusError(response.status, url);
        if (response.status === 404) throw new AbortError(new InputError(`${url}: not found (HTTP 404)`));
        if (!isTransient(error)) throw new AbortError(new InputError(error.message));
        throw error;
      },
      { retries: RETRY.attempts - 1, minTimeout: RETRY.firstDelayMs, maxTimeout: RETRY.maxDelayMs },
    );
  }

  async stat(url: string): Promise<ObjectInfo | undefined> {
    const release = await this.slots.acquire(new URL(url).host);
    try {
      const response = await this.request(url, { method: 'HEAD' });
      const length = response.headers.get('content-length');
      return {
        uri: url,
        size: length === null ? await this.sizeFromRange(url) : Number(length),
        etag: response.headers.get('etag') ?? undefined,
        lastModified: response.headers.get('last-modified') ?? undefined,
      };
    } catch (error) {
      if (error instanceof InputError && /HTTP 404/.test(error.message)) return undefined;
      throw error;
    } finally {
      release();
    }
  }

  /** Some servers answer HEAD without Content-Length; a one-byte ranged GET names the size in Content-Range. */
  private async sizeFromRange(url: string): Promise<number> {
    const response = await this.request(url, { headers: { range: 'bytes=0-0' } });
    await response.body?.cancel();
    const total = /\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1];
    if (response.status === 206 && total !== undefined) return Number(total);
    throw new InputError(
      `${url}: the server reports no size (no Content-Length on HEAD, no Content-Range on a ranged GET); a dump's size is needed to check it has not changed`,
    );
  }

  async read(url: string, range: ByteRange = { start: 0 }): Promise<Readable> {
    const host = new URL(url).host;
    const open = async (r: ByteRange): Promise<AsyncIterable<Uint8Array>> => {
      // `bytes=N-(N-1)` is not a valid range: servers answer with the whole file.
      if (r.end !== undefined && r.end <= r.start) return Readable.from([]);
      const whole = r.start === 0 && r.end === undefined;
      const headers: Record<string, string> = whole
        ? {}
        : { range: `bytes=${r.start}-${r.end === undefined ? '' : r.end - 1}` };
      const release = await this.slots.acquire(host);
      try {
        const response = await this.request(url, { headers });
        if (!whole && response.status !== 206) {
          await response.body?.cancel();
          throw new InputError(
            `${url}: the server ignored the Range request (HTTP ${response.status}); ranged reads need a server with Range support`,
          );
        }
        if (!response.body) return Readable.from([]);
        return releasing(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), release);
      } catch (error) {
        release();
        throw error;
      }
    };
    return resumableRead(open, range, url);
  }

  /** Directory listing from an autoindex page (what dump mirrors serve). */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const base = prefix.endsWith('/') ? prefix : prefix.slice(0, prefix.lastIndexOf('/') + 1);
    // The index page counts against the per-host connection cap like any other request.
    const release = await this.slots.acquire(new URL(base).host);
    let html: string;
    try {
      html = await (await this.request(base, {})).text();
    } finally {
      release();
    }
    const names = new Set<string>();
    for (const match of html.matchAll(/href="([^"?#]+)"/g)) {
      const href = match[1] as string;
      if (href.startsWith('/') || href.startsWith('..') || href.includes('://')) continue;
      names.add(decodeURIComponent(href));
    }
    for (const name of [...names].sort()) {
      const uri = base + name;
      if (!uri.startsWith(prefix) || name.endsWith('/')) continue;
      const info = await this.stat(uri);
      if (info) yield info;
    }
  }

  async write(url: string): Promise<void> {
    throw new UsageError(`${url}: http(s) URIs are read-only; write to a path or s3://`);
  }

  async writeIfAbsent(url: string): Promise<boolean> {
    throw new UsageError(`${url}: http(s) URIs are read-only; write to a path or s3://`);
  }

  async delete(url: string): Promise<void> {
    throw new UsageError(`${url}: http(s) URIs are read-only`);
  }
}

async function* releasing(body: AsyncIterable<Uint8Array>, release: () => void): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } finally {
    release();
  }
}
