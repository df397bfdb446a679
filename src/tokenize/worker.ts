import { parentPort, workerData } from 'node:worker_threads';
import { processBatch, type BatchInput, type BatchResult } from './batch.js';
import { createTokenizer, type EncodingName, type Tokenizer } from './encodings.js';

export interface WorkerData {
  preload: EncodingName | undefined;
}

export interface WorkerRequest {
  id: number;
  encoding: EncodingName;
  input: BatchInput;
}

export type WorkerResponse = { id: number; ok: true; result: BatchResult } | { id: number; ok: false; message: string };

const tokenizers = new Map<EncodingName, Promise<Tokenizer>>();

function tokenizerFor(encoding: EncodingName): Promise<Tokenizer> {
  let tokenizer = tokenizers.get(encoding);
  if (!tokenizer) {
    tokenizer = createTokenizer(encoding);
    tokenizers.set(encoding, tokenizer);
  }
  return tokenizer;
}

const { preload } = workerData as WorkerData;
// A failed preload is reported by the first batch that needs the encoding.
if (preload) tokenizerFor(preload).catch(() => {});

parentPort?.on('message', (request: WorkerRequest) => void answer(request));

/** Tokenizes one batch and posts the result (its buffers moved, not copied) or the error. */
async function answer(request: WorkerRequest): Promise<void> {
  try {
    const result = await processBatch(request.input, await tokenizerFor(request.encoding));
    const response: WorkerResponse = { id: request.id, ok: true, result };
    const buffers = [result.member, ...(result.sequences ? [result.sequences.bin, result.sequences.lengths] : [])].map(
      (b) => b.buffer as ArrayBuffer,
    );
    parentPort?.postMessage(response, buffers);
  } catch (error) {
    const response: WorkerResponse = { id: request.id, ok: false, message: (error as Error).stack ?? String(error) };
    parentPort?.postMessage(response);
  }
}
