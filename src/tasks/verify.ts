import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Manifest } from '../manifest/schema.js';
import { joinUri, storeFor } from '../storage/index.js';
import { listDoneTaskIds, readMarker, type Marker } from './marker.js';

export interface VerifyReport {
  ok: boolean;
  tasks: number;
  done: number;
  missing: string[];
  problems: string[];
  totals: { docs: number; rows: number; tokens: number; text_bytes: number; skipped: Record<string, number>; bad_docs: number };
}

/**
 * Every doc of the manifest exactly once: each task has a marker whose doc count and id digest equal the manifest's
 * (so the shard covers exactly the task's docs), each shard exists with its marker's size, and no page id appears in
 * two rows of one dump. `deep` also re-reads every shard: sha256, row count, and page ids.
 */
export async function verifyRun(manifest: Manifest, outputPrefix: string, options: { deep: boolean }): Promise<VerifyReport> {
  const done = await listDoneTaskIds(outputPrefix);
  const report: VerifyReport = {
    ok: false,
    tasks: manifest.tasks.length,
    done: 0,
    missing: [],
    problems: [],
    totals: { docs: 0, rows: 0, tokens: 0, text_bytes: 0, skipped: {}, bad_docs: 0 },
  };
  // Page ids are unique within a dump (two dumps of one wiki legitimately share pages).
  const pageIdsByDump = new Map<string, number[]>();
  for (const task of manifest.tasks) {
    if (!done.has(task.task_id)) {
      report.missing.push(task.task_id);
      continue;
    }
    const marker = (await readMarker(outputPrefix, task.task_id)) as Marker;
    report.done++;
    if (marker.docs !== task.doc_count) report.problems.push(`${task.task_id}: marker has ${marker.docs} docs, manifest ${task.doc_count}`);
    if (marker.ids_sha256 !== task.ids_sha256) report.problems.push(`${task.task_id}: marker covers other docs than the manifest's task (id digest differs)`);
    if (marker.rows + Object.values(marker.skipped).reduce((a, b) => a + b, 0) + marker.bad_docs.length !== marker.docs) {
      report.problems.push(`${task.task_id}: rows + skipped + bad docs ≠ docs in the marker`);
    }
    const shardUri = joinUri(outputPrefix, marker.shard.key);
    const shard = await storeFor(shardUri).stat(shardUri);
    if (!shard) report.problems.push(`${task.task_id}: shard ${marker.shard.key} is missing`);
    else if (shard.size !== marker.shard.bytes) report.problems.push(`${task.task_id}: shard is ${shard.size} bytes, marker says ${marker.shard.bytes}`);
    else if (options.deep) {
      const pageIds = pageIdsByDump.get(task.dump) ?? [];
      pageIdsByDump.set(task.dump, pageIds);
      report.problems.push(...(await checkShard(shardUri, marker, pageIds)));
    }
    report.totals.docs += marker.docs;
    report.totals.rows += marker.rows;
    report.totals.tokens += marker.tokens;
    report.totals.text_bytes += marker.text_bytes;
    report.totals.bad_docs += marker.bad_docs.length;
    for (const [reason, n] of Object.entries(marker.skipped)) report.totals.skipped[reason] = (report.totals.skipped[reason] ?? 0) + n;
  }
  for (const [dump, pageIds] of pageIdsByDump) {
    const sorted = Float64Array.from(pageIds).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) {
        report.problems.push(`page_id ${sorted[i]} of dump ${dump} appears in more than one row`);
        break;
      }
    }
  }
  report.ok = report.missing.length === 0 && report.problems.length === 0;
  return report;
}

async function checkShard(uri: string, marker: Marker, pageIds: number[]): Promise<string[]> {
  const hash = createHash('sha256');
  const raw = await storeFor(uri).read(uri);
  raw.on('data', (chunk: Buffer) => hash.update(chunk));
  const lines = createInterface({ input: raw.pipe(createGunzip()), crlfDelay: Infinity });
  let rows = 0;
  const problems: string[] = [];
  for await (const line of lines) {
    rows++;
    const match = /^\{"page_id":(\d+),/.exec(line);
    if (!match) {
      problems.push(`${marker.task_id}: shard row ${rows} is not a shard row`);
      break;
    }
    pageIds.push(Number(match[1]));
  }
  if (rows !== marker.rows) problems.push(`${marker.task_id}: shard has ${rows} rows, marker says ${marker.rows}`);
  if (hash.digest('hex') !== marker.shard.sha256) problems.push(`${marker.task_id}: shard sha256 differs from its marker`);
  return problems;
}
