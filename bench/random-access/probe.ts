/**
 * Random-access probe, in its own process: `probe.ts MANIFEST_URI [REPEATS]`.
 * 1. Every task is opened at its access point (as run-tasks does) and read to its last byte: the sum of bytes
 *    decoded by all tasks ÷ the dump's uncompressed size shows how much work random access repeats.
 * 2. Time to first doc (its first byte decoded) of the first and of the last task, alternating, median of REPEATS.
 * Prints one JSON line.
 */
import { median } from '../lib/measure.js';
import { manifestFolderOf, readManifest, type Task } from '../../src/manifest/index.js';
import { openTaskStream } from '../../src/tasks/open.js';

const [manifestUri, repeatsArg = '3'] = process.argv.slice(2);
if (!manifestUri) throw new Error('usage: probe.ts MANIFEST_URI [REPEATS]');
const manifest = await readManifest(manifestUri);
const folder = manifestFolderOf(manifestUri);

/** Decode one task; stop at its first doc (untilEnd false) or after its last byte. */
async function readTask(task: Task, untilEnd: boolean): Promise<{ bytes: number; firstDocS: number }> {
  const dump = manifest.dumps.find((d) => d.name === task.dump);
  if (!dump) throw new Error(`task ${task.task_id}: dump ${task.dump} not in the manifest`);
  const t0 = process.hrtime.bigint();
  const { decoded, skipBytes } = await openTaskStream(task, dump, folder);
  const need = skipBytes + (task.uncompressed_end - task.uncompressed_start);
  let bytes = 0;
  let firstDocS = Number.NaN;
  for await (const chunk of decoded) {
    bytes += chunk.byteLength;
    if (Number.isNaN(firstDocS) && bytes > skipBytes) {
      firstDocS = Number(process.hrtime.bigint() - t0) / 1e9;
      if (!untilEnd) break;
    }
    // Stop where run-tasks stops, after the task's last byte (leaving the loop ends the decoder).
    if (bytes >= need) break;
  }
  return { bytes, firstDocS };
}

let decodedBytes = 0;
for (const task of manifest.tasks) decodedBytes += (await readTask(task, true)).bytes;

const first = manifest.tasks[0]!;
const last = manifest.tasks[manifest.tasks.length - 1]!;
const firstS: number[] = [];
const lastS: number[] = [];
for (let i = 0; i < Number(repeatsArg); i++) {
  firstS.push((await readTask(first, false)).firstDocS);
  lastS.push((await readTask(last, false)).firstDocS);
}
console.log(
  JSON.stringify({
    tasks: manifest.tasks.length,
    accessKinds: [...new Set(manifest.tasks.map((t) => t.access.kind))],
    uncompressedBytes: manifest.totals.uncompressed_bytes,
    decodedBytes,
    firstTaskFirstDocS: median(firstS),
    lastTaskFirstDocS: median(lastS),
  }),
);
