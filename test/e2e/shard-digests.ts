// What each task's shard under an output prefix holds, in a form two runs can be compared by: rows, tokens, the
// manifest's ids digest, and the sha256 of the shard's uncompressed bytes (gzip framing may differ between builds;
// the rows must not). The suite calls it on the host for a local run and runs it inside a node, where the
// cluster's object store is reachable:
//   node --import tsx test/e2e/shard-digests.ts OUTPUT_PREFIX     (prints the digests as JSON)
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { joinUri, readBytes } from '../../src/storage/index.js';
import { listDoneTaskIds, readMarker } from '../../src/tasks/marker.js';

export interface ShardDigest {
  rows: number;
  tokens: number;
  ids_sha256: string;
  rows_sha256: string;
}

export async function shardDigests(outputPrefix: string): Promise<Record<string, ShardDigest>> {
  const digests: Record<string, ShardDigest> = {};
  for (const taskId of [...(await listDoneTaskIds(outputPrefix))].sort()) {
    const marker = await readMarker(outputPrefix, taskId);
    if (!marker) throw new Error(`${outputPrefix}: the marker of ${taskId} vanished while listing`);
    const rows = gunzipSync(await readBytes(joinUri(outputPrefix, marker.shard.key)));
    digests[taskId] = {
      rows: marker.rows,
      tokens: marker.tokens,
      ids_sha256: marker.ids_sha256,
      rows_sha256: createHash('sha256').update(rows).digest('hex'),
    };
  }
  return digests;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const prefix = process.argv[2];
  if (!prefix) {
    process.stderr.write('usage: node --import tsx test/e2e/shard-digests.ts OUTPUT_PREFIX\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await shardDigests(prefix))}\n`);
}
