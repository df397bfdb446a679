import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits, type WorkerOptions } from 'node:worker_threads';
import { messageOf } from '../errors/index.js';
import type { BatchInput, BatchResult } from './batch.js';
import type { EncodingName } from './encodings.js';
import type { WorkerData, WorkerRequest, WorkerResponse } from './worker.js';

interface Pending {
  resolve(result: BatchResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  /** Ids of the batches this worker holds. */
  batches: Set<number>;
}

/**
 * The built program runs worker.js. From TypeScript sources (tests, `tsx`) the worker first registers tsx's loader
 * itself: `--import tsx` in a worker's execArgv only works when the parent process was started with it too.
 */
function newWorker(options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url), options);
  const worker = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  return new Worker(
    `import(${JSON.stringify(tsxApiUrl())}).then(({ register }) => { register(); return import(${worker}); })`,
    {
      ...options,
      eval: true,
    },
  );
}

/** The ESM entry of `tsx/esm/api`, found from this file (an eval'd worker resolves bare names from the cwd). */
function tsxApiUrl(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  return pathToFileURL(join(dirname(manifest), exports['./esm/api']!.import.default)).href;
}

/** One batch being tokenized and one waiting: the worker never idles between batches, memory stays bounded. */
const BATCHES_PER_WORKER = 2;

/**
 * A fixed set of worker threads that parse + tokenize + serialize + compress batches. Each worker holds at most
 * BATCHES_PER_WORKER batches; `submit` waits when all are full, which is the backpressure that keeps memory
 * bounded on a 40 GB dump. Batches go to the least-busy worker, so one huge page does not stall the others. A
 * worker that dies (out of memory on a huge page, a crash) fails only the batches it held and is replaced.
 */
export class TokenizerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<() => void> = [];
  private nextId = 1;
  private closed = false;

  /**
   * `preload`: the encoding to load in every worker right away, while the caller is still opening its input.
   * `limits`: V8 heap limits per worker (a worker over them dies and is replaced; its batches fail).
   */
  constructor(
    size: number = availableParallelism(),
    private readonly options: { preload?: EncodingName; limits?: ResourceLimits } = {},
  ) {
    this.size = Math.max(1, size);
    for (let i = 0; i < this.size; i++) {
      const slot: Slot = { worker: this.startWorker(() => slot), batches: new Set() };
      this.slots.push(slot);
    }
  }

  /**
   * Resolves once the batch is accepted (a worker had room); `result` then settles with the batch's result.
   * (Wrapped in an object because a promise of a promise would flatten and wait for the result.)
   */
  async submit(encoding: EncodingName, input: BatchInput): Promise<{ result: Promise<BatchResult> }> {
    let slot = this.leastBusy();
    while (slot.batches.size >= BATCHES_PER_WORKER) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      slot = this.leastBusy();
    }
    if (this.closed) throw new Error('tokenizer pool is closed');
    const id = this.nextId++;
    slot.batches.add(id);
    const result = new Promise<BatchResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const request: WorkerRequest = { id, encoding, input };
    const exact = input.bytes.byteOffset === 0 && input.bytes.byteLength === input.bytes.buffer.byteLength;
    // Transfer, never copy, the batch bytes; a view into a shared buffer must be copied out first.
    const bytes = exact ? input.bytes : new Uint8Array(input.bytes);
    slot.worker.postMessage({ ...request, input: { ...input, bytes } }, [bytes.buffer as ArrayBuffer]);
    return { result };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private startWorker(slotOf: () => Slot): Worker {
    const workerData: WorkerData = { preload: this.options.preload };
    const worker = newWorker({ workerData, ...(this.options.limits ? { resourceLimits: this.options.limits } : {}) });
    worker.on('message', (response: WorkerResponse) => this.settle(slotOf(), response));
    // 'error' (an uncaught error, ERR_WORKER_OUT_OF_MEMORY) is followed by 'exit'; the message says why.
    let cause = 'it exited';
    worker.on('error', (error) => (cause = messageOf(error)));
    worker.on('exit', (code) => {
      if (!this.closed) this.replace(slotOf(), `tokenizer worker died (${cause}, exit code ${code})`);
    });
    return worker;
  }

  private replace(slot: Slot, message: string): void {
    for (const id of slot.batches) {
      this.pending.get(id)?.reject(new Error(message));
      this.pending.delete(id);
    }
    slot.batches.clear();
    slot.worker = this.startWorker(() => slot);
    while (this.waiters.length > 0) this.waiters.shift()?.();
  }

  private leastBusy(): Slot {
    return this.slots.reduce((best, slot) => (slot.batches.size < best.batches.size ? slot : best));
  }

  private settle(slot: Slot, response: WorkerResponse): void {
    slot.batches.delete(response.id);
    const pending = this.pending.get(response.id);
    this.pending.delete(response.id);
    if (pending) {
      if (response.ok) pending.resolve(response.result);
      else pending.reject(new Error(`tokenizer worker failed: ${response.message}`));
    }
    this.waiters.shift()?.();
  }
}
