import { TaskFailure } from '../config/errors.js';
import { decoderFor } from '../dumps/decode.js';
import type { DumpEntry, Task } from '../manifest/schema.js';
import { storeFor } from '../storage/index.js';

export interface TaskStream {
  decoded: AsyncIterable<Buffer>;
  /** Decoded bytes between where decoding starts and the task's first doc. */
  skipBytes: number;
}

/** Refuse to run against a dump that changed since the manifest was made: the shards would be wrong. */
export async function checkDumpUnchanged(dump: DumpEntry): Promise<void> {
  const now = await storeFor(dump.uri).stat(dump.uri);
  if (!now) throw new TaskFailure(`${dump.uri}: dump not found (the manifest lists it as dump ${dump.name})`);
  const changed = now.size !== dump.size || (dump.etag !== undefined && now.etag !== undefined && now.etag !== dump.etag);
  if (changed) {
    throw new TaskFailure(
      `${dump.uri}: the dump changed since the manifest was made (size ${dump.size} → ${now.size}, etag ${dump.etag ?? '-'} → ${now.etag ?? '-'}); re-create the manifest`,
    );
  }
}

/** Decoded bytes for a task, starting at its access point. */
export async function openTaskStream(task: Task, dump: DumpEntry): Promise<TaskStream> {
  const what = `${dump.uri} (task ${task.task_id})`;
  switch (task.access.kind) {
    case 'start': {
      const source = await storeFor(dump.uri).read(dump.uri);
      return { decoded: decoderFor(dump.compression)(source, what), skipBytes: task.uncompressed_start };
    }
    default:
      throw new TaskFailure(`${what}: access kind ${task.access.kind} is not supported by this program version`);
  }
}
