import { parentPort } from 'node:worker_threads';
import { processBatch, type BatchInput } from './batch.js';
import { createTokenizer, type EncodingName, type Tokenizer } from './encodings.js';

export interface WorkerRequest {
  id: number;
  encoding: EncodingName;
  input: BatchInput;
}

export type WorkerResponse =
  | { id: number; ok: true; result: import('./batch.js').BatchResult }
  | { id: number; ok: false; message: string };

const tokenizers = new Map<EncodingName, Promise<Tokenizer>>();

parentPort?.on('message', async (request: WorkerRequest) => {
  try {
    let tokenizer = tokenizers.get(request.encoding);
    if (!tokenizer) {
      tokenizer = createTokenizer(request.encoding);
      tokenizers.set(request.encoding, tokenizer);
    }
    const result = processBatch(request.input, await tokenizer);
    const response: WorkerResponse = { id: request.id, ok: true, result };
    parentPort?.postMessage(response, [result.member.buffer as ArrayBuffer]);
  } catch (error) {
    const response: WorkerResponse = { id: request.id, ok: false, message: (error as Error).stack ?? String(error) };
    parentPort?.postMessage(response);
  }
});
