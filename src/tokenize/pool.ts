import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BatchInput, BatchResult } from './batch.js';
import type { EncodingName } from './encodings.js';
import type { WorkerData, WorkerRequest, WorkerResponse } from './worker.js';

interface Pending {
  resolve(result: BatchResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

/** From TypeScript sources (tests, `tsx`), workers need the tsx loader; the built program runs plain JS. */
function workerUrl(): { url: URL; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  return {
    url: new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url),
    execArgv: fromSource ? ['--import', 'tsx'] : [],
  };
}

/**
 * A fixed set of worker threads that parse + tokenize + serialize + compress batches. Each worker holds at most
 * `perWorker` queued batches; `submit` waits when all are full, which is the backpressure that keeps memory bounded
 * on a 40 GB dump. Batches go to the least-busy worker, so one huge page does not stall the others.
 */
export class TokenizerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<() => void> = [];
  private nextId = 1;
  private closed = false;

  /** `preload`: the encoding to load in every worker right away, while the caller is still opening its input. */
  constructor(size: number = availableParallelism(), preload?: EncodingName, private readonly perWorker = 2) {
    this.size = Math.max(1, size);
    const { url, execArgv } = workerUrl();
    const workerData: WorkerData = { preload };
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(url, { execArgv, workerData });
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (response: WorkerResponse) => this.settle(slot, response));
      worker.on('error', (error) => this.failAll(error));
      this.slots.push(slot);
    }
  }

  /**
   * Resolves once the batch is accepted (a worker had room); `result` then settles with the batch's result.
   * (Wrapped in an object because a promise of a promise would flatten and wait for the result.)
   */
  async submit(encoding: EncodingName, input: BatchInput): Promise<{ result: Promise<BatchResult> }> {
    let slot = this.leastBusy();
    while (slot.busy >= this.perWorker) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      slot = this.leastBusy();
    }
    if (this.closed) throw new Error('tokenizer pool is closed');
    const id = this.nextId++;
    slot.busy++;
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

  private leastBusy(): Slot {
    return this.slots.reduce((best, slot) => (slot.busy < best.busy ? slot : best));
  }

  private settle(slot: Slot, response: WorkerResponse): void {
    slot.busy--;
    const pending = this.pending.get(response.id);
    this.pending.delete(response.id);
    if (pending) {
      if (response.ok) pending.resolve(response.result);
      else pending.reject(new Error(`tokenizer worker failed: ${response.message}`));
    }
    this.waiters.shift()?.();
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}
