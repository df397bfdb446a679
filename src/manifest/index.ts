export {
  ManifestSchema,
  TaskSchema,
  MANIFEST_VERSION,
  type Manifest,
  type Task,
  type Access,
  type DumpEntry,
} from './schema.js';
export {
  buildManifest,
  TaskCutter,
  taskId,
  DEFAULT_MAX_DOCS_PER_TASK,
  DEFAULT_MAX_TASK_BYTES,
  type ManifestOptions,
  type DumpScan,
} from './build.js';
export { readManifest, writeManifest, serializeManifest, manifestFolderOf } from './io.js';
export { createManifest, ensureManifest } from './ensure.js';
export { readBzip2Blocks, readGzipPoint } from './access-index.js';
