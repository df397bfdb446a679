import type { OutputFormat } from './formats.js';

/**
 * The output prefix's layout, the contract between everything that writes or reads a run's output: every key below
 * is relative to the output prefix (index keys: to the manifest's folder, which is the output prefix by default).
 *
 *   manifest.json                         the manifest (tasks, dumps, format)
 *   index/<dump>/…                        access index: gzip access points, the bzip2 block list
 *   shards/<task_id>.jsonl.gz             a task's shard (megatron: .bin, .idx, .meta.jsonl.gz)
 *   markers/<task_id>.json                a task is done iff its marker exists
 *   state/…                               the submitter's memory: jobs, attempts, quarantine, done cache, progress, lease
 *   _SUCCESS                              written once verification found every doc exactly once, with the totals
 */
export const MANIFEST_KEY = 'manifest.json';
export const SUCCESS_KEY = '_SUCCESS';
export const SHARDS_DIR = 'shards/';
export const MARKERS_DIR = 'markers/';
export const STATE_DIR = 'state/';

/** The gzip access point where task `ordinal` of a dump starts. */
export const gzipPointKey = (dump: string, ordinal: number): string =>
  `index/${dump}/gzip-${String(ordinal).padStart(6, '0')}.ap.gz`;
/** The list of every bzip2 block of a dump. */
export const bzip2BlocksKey = (dump: string): string => `index/${dump}/bzip2-blocks.json.gz`;

/** Keys of a task's shard files; `shard` is the one every format has. */
export interface ShardKeys {
  shard: string;
  idx?: string;
  meta?: string;
}

export function shardKeys(format: OutputFormat, taskId: string): ShardKeys {
  if (format === 'jsonl') return { shard: `${SHARDS_DIR}${taskId}.jsonl.gz` };
  return {
    shard: `${SHARDS_DIR}${taskId}.bin`,
    idx: `${SHARDS_DIR}${taskId}.idx`,
    meta: `${SHARDS_DIR}${taskId}.meta.jsonl.gz`,
  };
}

const MARKER_SUFFIX = '.json';
export const markerKey = (taskId: string): string => `${MARKERS_DIR}${taskId}${MARKER_SUFFIX}`;
/** The task id a marker's file name stands for; undefined for anything else under `markers/`. */
export function taskIdOfMarker(fileName: string): string | undefined {
  return fileName.endsWith(MARKER_SUFFIX) ? fileName.slice(0, -MARKER_SUFFIX.length) : undefined;
}

/** The submitter's files, under `state/`. */
export const STATE_FILES = {
  jobs: `${STATE_DIR}jobs.json`,
  attempts: `${STATE_DIR}attempts.json`,
  quarantine: `${STATE_DIR}quarantine.json`,
  done: `${STATE_DIR}done.json`,
  progress: `${STATE_DIR}progress.json`,
  lease: `${STATE_DIR}lease/`,
} as const;
