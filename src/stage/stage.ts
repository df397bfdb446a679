import { Readable } from 'node:stream';
import { InputError, TaskFailure, UsageError, messageOf } from '../errors/index.js';
import { programVersion, rootLogger, type Logger } from '../observability/index.js';
import { resolveDumps, type DumpFile } from '../dumps/index.js';
import { removeStaleTemps, baseName, joinUri, parseUri, readBytes, storeFor } from '../storage/index.js';
import { eachLimited } from '../util/index.js';
import { readStagingRecord, staleReason, writeStagingRecord, type StagingRecord } from './record.js';
import { TransferCheck } from './transfer-check.js';

export interface StageOptions {
  /** A dump file (.json.gz / .json.bz2) or a parts folder with `_SUCCESS`, on http(s), s3:// or a path. */
  from: string;
  /** The staged copy: a path or s3://; a folder (or, for a single file, the file's full name). */
  to: string;
  /** Expected sha256 of a single-file source. */
  sha256?: string;
  /** Expected sha256 by file name (from `--sha256-file`). */
  sha256ByName?: ReadonlyMap<string, string>;
  /** Files transferred at once; connections per source host stay capped by the HTTP store. */
  parallel?: number;
  allowIncompleteDump?: boolean;
  /** Whether the HTTP store was given an agent with a contact (`--user-agent` or TOKENIZE_WIKI_USER_AGENT). */
  userAgentWithContact?: boolean;
  logger?: Logger;
}

export type StageOutcome = 'staged' | 'already staged' | 'failed';

export interface StagedFile {
  name: string;
  source: string;
  destination: string;
  size: number;
  outcome: StageOutcome;
  /** Why the file was (re-)staged. */
  reason?: string;
  sha256?: string;
  seconds?: number;
  error?: string;
}

export interface StageReport {
  files: StagedFile[];
  /** A parts folder's `_SUCCESS`: copied last, and only when every part is staged. */
  success?: 'copied' | 'present' | 'not copied' | 'none at the source';
  ok: boolean;
}

interface Item {
  dump: DumpFile;
  file: string;
  destination: string;
  record: string;
  expectedSha256?: string;
}

const DUMP_FILE = /\.json\.(gz|bz2)$/;
const PROGRESS_INTERVAL_MS = 10_000;

/** The folder holding a URI (`.` for a bare relative file name). */
function parentOf(uri: string): string {
  const at = uri.lastIndexOf('/');
  return at === -1 ? '.' : uri.slice(0, at);
}

/** Staging records live in `_staging/` beside the copies, so a staged parts folder keeps only dump files at its top. */
function stagingRecordUri(destination: string): string {
  return joinUri(parentOf(destination), '_staging', `${baseName(destination)}.json`);
}

/**
 * Mirror a dump into a path or s3://, once: each file streams from the source to an atomic write (a multipart upload
 * on S3) while it is checked (size, the format's CRCs, optional sha256); a staging record written afterwards makes a
 * re-run skip it unless its source changed. A parts folder's `_SUCCESS` is copied last, so the staged folder is
 * complete only when every part is there.
 */
export async function stageDump(options: StageOptions): Promise<StageReport> {
  const logger = options.logger ?? rootLogger.child({ command: 'stage' });
  const { from, to } = options;
  if (parseUri(to).scheme === 'http')
    throw new UsageError(`--to ${to}: http(s) URIs are read-only; stage to a path or s3://`);
  const single = DUMP_FILE.test(from);
  if (options.sha256 !== undefined && !single) {
    throw new UsageError('--sha256 checks a single dump file; for a parts folder use --sha256-file');
  }
  if (!single && DUMP_FILE.test(to))
    throw new UsageError(`--to ${to}: a parts folder stages to a folder, not to a file name`);
  if (single && DUMP_FILE.test(to) && DUMP_FILE.exec(to)?.[1] !== DUMP_FILE.exec(from)?.[1]) {
    throw new UsageError(`--to ${to}: the staged copy must keep the source's compression suffix (${baseName(from)})`);
  }
  if (parseUri(from).scheme === 'http' && !options.userAgentWithContact) {
    logger.warn(
      'no --user-agent / TOKENIZE_WIKI_USER_AGENT with a contact: Wikimedia blocks generic agents; set e.g. "mirror-bot/1.0 (you@example.org)"',
    );
  }

  const dumps = await resolveDumps([from], { allowIncompleteDump: options.allowIncompleteDump });
  const folder = to.replace(/\/+$/, '');
  const items: Item[] = dumps.map((dump) => {
    const file = baseName(dump.uri);
    const destination = single && DUMP_FILE.test(to) ? to : joinUri(folder, file);
    const expectedSha256 = single
      ? (options.sha256 ?? options.sha256ByName?.get(file))
      : options.sha256ByName?.get(file);
    return { dump, file, destination, record: stagingRecordUri(destination), expectedSha256 };
  });
  for (const name of options.sha256ByName?.keys() ?? []) {
    if (!items.some((item) => item.file === name))
      logger.warn({ file: name }, 'the sha256 list names a file the source does not have');
  }

  const reasons = await eachLimited(items, 8, (item) => restageReason(item, logger));
  const todo = items.flatMap((item, i) => (reasons[i] === undefined ? [] : [{ item, reason: reasons[i] }]));
  const successDestination = single ? undefined : joinUri(folder, '_SUCCESS');
  // While any part is replaced, the staged folder must not look complete.
  if (successDestination !== undefined && todo.length > 0)
    await storeFor(successDestination).delete(successDestination);

  const active = new Set<{ item: Item; check: TransferCheck; started: number }>();
  const timer = setInterval(() => {
    for (const { item, check, started } of active) {
      const seconds = (Date.now() - started) / 1000;
      logger.info(
        { file: item.file, bytes: check.bytes, size: item.dump.size, mb_per_s: round(check.bytes / 1e6 / seconds) },
        'staging progress',
      );
    }
  }, PROGRESS_INTERVAL_MS);
  timer.unref();
  const errors: unknown[] = [];
  let staged: StagedFile[];
  try {
    staged = await eachLimited(todo, options.parallel ?? 2, async ({ item, reason }) => {
      try {
        return await stageFile(item, reason, logger, active);
      } catch (error) {
        errors.push(error);
        logger.error({ file: item.file, err: messageOf(error) }, 'staging failed');
        return { ...summary(item, 'failed'), reason, error: messageOf(error) };
      }
    });
  } finally {
    clearInterval(timer);
  }
  // Bad input (credentials, a refused request) is reported as such once the other files are done.
  const badInput = errors.find((error) => error instanceof InputError || error instanceof UsageError);
  if (badInput !== undefined) throw badInput;

  const byItem = new Map(todo.map(({ item }, i) => [item, staged[i] as StagedFile]));
  const files = items.map((item) => byItem.get(item) ?? summary(item, 'already staged'));
  const ok = files.every((file) => file.outcome !== 'failed');
  let success: StageReport['success'];
  if (successDestination !== undefined) {
    const successSource = joinUri(from, '_SUCCESS');
    if (!(await storeFor(successSource).stat(successSource))) success = 'none at the source';
    else if (!ok) success = 'not copied';
    else if (todo.length === 0 && (await storeFor(successDestination).stat(successDestination))) success = 'present';
    else {
      await storeFor(successDestination).write(successDestination, await readBytes(successSource));
      success = 'copied';
    }
  }
  return { files, success, ok };
}

function summary(item: Item, outcome: StageOutcome): StagedFile {
  return { name: item.file, source: item.dump.uri, destination: item.destination, size: item.dump.size, outcome };
}

/** Undefined if the file is staged and still matches its source; otherwise why it must be (re-)staged. */
async function restageReason(item: Item, logger: Logger): Promise<string | undefined> {
  let record: StagingRecord | undefined;
  try {
    record = await readStagingRecord(item.record);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    logger.warn({ file: item.file, err: messageOf(error) }, 'unreadable staging record; staging the file again');
    return 'unreadable staging record';
  }
  if (record === undefined) return 'not staged yet';
  const stale = staleReason(record, item.dump, item.expectedSha256);
  if (stale !== undefined) return stale;
  const copy = await storeFor(item.destination).stat(item.destination);
  if (copy === undefined) return 'the staged copy is missing';
  if (copy.size !== record.size) return `the staged copy has ${copy.size} bytes, its record says ${record.size}`;
  return undefined;
}

async function stageFile(
  item: Item,
  reason: string,
  logger: Logger,
  active: Set<{ item: Item; check: TransferCheck; started: number }>,
): Promise<StagedFile> {
  const { dump, destination, file } = item;
  if (!Number.isFinite(dump.size)) {
    throw new InputError(`${dump.uri}: the server reports no Content-Length, so the copy cannot be checked by size`);
  }
  if (dump.size === 0) throw new TaskFailure(`${file}: the source is empty (${dump.uri})`);
  logger.info({ file, source: dump.uri, destination, size: dump.size, reason }, 'staging');
  // An old record must not vouch for a copy that is being replaced.
  await storeFor(item.record).delete(item.record);
  const local = parseUri(destination);
  if (local.scheme === 'file') {
    // A run killed mid-transfer leaves its temp file; S3 forgets an unfinished multipart upload by lifecycle rule.
    for (const path of await removeStaleTemps(local.path))
      logger.info({ file, path }, 'removed the temp file of an interrupted run');
  }
  const started = Date.now();
  const check = new TransferCheck(file, dump.size, dump.compression, item.expectedSha256);
  const entry = { item, check, started };
  active.add(entry);
  let source: Readable | undefined;
  let body: Readable | undefined;
  try {
    source = await storeFor(dump.uri).read(dump.uri, { start: 0, end: dump.size });
    body = Readable.from(check.pass(source));
    await storeFor(destination).write(destination, body);
  } catch (error) {
    await discard(destination, logger);
    const cause = check.failure ?? error;
    if (cause instanceof TaskFailure || cause instanceof InputError || cause instanceof UsageError) throw cause;
    throw new TaskFailure(`${file}: transfer failed after ${check.bytes} of ${dump.size} bytes: ${messageOf(cause)}`);
  } finally {
    // A store that fails mid-write may stop reading without destroying the body: close both ends here, so the
    // source's connection slot and the decoder are released.
    body?.destroy();
    source?.destroy();
    active.delete(entry);
  }
  const result = check.result;
  if (result === undefined) throw new Error(`internal: ${file} was written without passing its checks`);
  const copy = await storeFor(destination).stat(destination);
  if (copy?.size !== dump.size) {
    await discard(destination, logger);
    throw new TaskFailure(
      `${file}: the staged copy ${destination} has ${copy?.size ?? 'no'} bytes, expected ${dump.size}`,
    );
  }
  const record: StagingRecord = {
    format: 'tokenize-wiki/staging-record',
    version: 1,
    name: file,
    source: dump.uri,
    destination,
    size: dump.size,
    etag: dump.etag,
    last_modified: dump.lastModified,
    sha256: result.sha256,
    format_check: result.formatCheck,
    expected_sha256: item.expectedSha256,
    verified: true,
    program_version: programVersion,
    staged_at: new Date().toISOString(),
  };
  // A dump replaced during the transfer could splice old and new bytes across a resumed request.
  const now = await storeFor(dump.uri).stat(dump.uri);
  const changed = now === undefined ? 'the source disappeared' : staleReason(record, now);
  if (changed !== undefined) {
    await discard(destination, logger);
    throw new TaskFailure(`${file}: ${changed} during the transfer; run stage again`);
  }
  await writeStagingRecord(item.record, record);
  const seconds = (Date.now() - started) / 1000;
  logger.info(
    {
      file,
      bytes: result.bytes,
      uncompressed_bytes: result.uncompressedBytes,
      seconds: round(seconds),
      sha256: result.sha256,
    },
    'staged',
  );
  return { ...summary(item, 'staged'), reason, sha256: result.sha256, seconds: round(seconds) };
}

/** Remove a copy that failed its checks; a failure to remove is logged, the original error matters more. */
async function discard(destination: string, logger: Logger): Promise<void> {
  try {
    await storeFor(destination).delete(destination);
  } catch (error) {
    logger.warn({ destination, err: messageOf(error) }, 'could not delete a copy that failed its checks');
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;

export function formatStageReport(report: StageReport): string {
  const lines = report.files.map((f) => {
    if (f.outcome === 'failed') return `FAILED ${f.name}: ${f.error ?? 'unknown error'}`;
    if (f.outcome === 'already staged') return `already staged ${f.name} -> ${f.destination}`;
    return `staged ${f.name} -> ${f.destination} (${f.size} bytes in ${f.seconds ?? 0} s, sha256 ${f.sha256 ?? '?'})`;
  });
  const count = (outcome: StageOutcome): number => report.files.filter((f) => f.outcome === outcome).length;
  const success = report.success === undefined ? '' : `; _SUCCESS ${report.success}`;
  lines.push(
    `stage: ${count('staged')} staged, ${count('already staged')} already staged, ${count('failed')} failed${success}`,
  );
  return lines.join('\n') + '\n';
}
