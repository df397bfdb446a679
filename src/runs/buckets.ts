import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { parseUri, s3ErrorName as name, s3ErrorStatus as status, s3Reason as reason } from '../storage/index.js';
// Loads the S3 SDK: imported directly (not through storage/index.ts), and this module is itself loaded lazily.
import { mergeLifecycle, multipartRule } from '../storage/lifecycle.js';
import { outputRules } from './lifecycle.js';
import { DEFAULT_MULTIPART_DAYS, DEFAULT_STATE_DAYS } from './retention.js';
import type { RunFile } from './run-file.js';

/** What a prefix of a run is used for; the usual buckets are `wiki-dumps`, `wiki-manifests`, `wiki-output`. */
export type Role = 'dumps' | 'manifests' | 'outputs';

/** The parts of a run file that say where its data lives (`dump_access` defaults to the object store). */
export type RunStorage = Pick<RunFile, 'run_id' | 'dumps' | 'manifest_uri' | 'output_prefix'> &
  Partial<Pick<RunFile, 'dump_access'>>;

/** One prefix of the object store that a run reads and writes. */
export interface RunPrefix {
  runs: string[];
  roles: Role[];
  bucket: string;
  /** Key prefix ending in `/` ('' for the bucket's root). */
  keyPrefix: string;
}

/** A URI of a run that `buckets ensure` does not check, and why (or what is wrong with it). */
export interface Skipped {
  run: string;
  role: Role;
  uri: string;
  reason: string;
  /** True when the run file itself is inconsistent (e.g. an http dump with dump_access object-store). */
  problem: boolean;
}

/** A check's outcome: ok, a problem (with the reason), or not applicable here. */
export type Outcome = { ok: true; text: string } | { ok: false; text: string } | { ok: undefined; text: string };

export interface PrefixReport extends RunPrefix {
  uri: string;
  bucketState: Outcome;
  write: Outcome;
  read: Outcome;
  list: Outcome;
  delete: Outcome;
  /** Conditional create (`If-None-Match: *`), which the run's writers rely on; checked under output prefixes. */
  ifNoneMatch: Outcome;
  lifecycle: Outcome;
}

export interface EnsureReport {
  locations: PrefixReport[];
  skipped: Skipped[];
  /** One line per problem, naming the URI and what to do. */
  problems: string[];
  ok: boolean;
}

export interface EnsureOptions {
  /** Apply lifecycle rules (only adding ours that are missing; `lifecycle apply` changes existing ones). */
  lifecycle: boolean;
  stateDays?: number;
  multipartDays?: number;
}

const NA: Outcome = { ok: undefined, text: '-' };
const ROLE_ORDER: Role[] = ['dumps', 'manifests', 'outputs'];

/** The object-store prefixes of some runs, one per (bucket, prefix), with every run and role that uses it. */
export function runPrefixes(runs: readonly RunStorage[]): { locations: RunPrefix[]; skipped: Skipped[] } {
  const byPrefix = new Map<string, RunPrefix>();
  const skipped: Skipped[] = [];
  const add = (run: RunStorage, role: Role, uri: string, folderOf: (key: string) => string): void => {
    const location = parseUri(uri);
    if (location.scheme !== 's3') {
      const http = location.scheme === 'http';
      const note = (reason: string, problem: boolean): void =>
        void skipped.push({ run: run.run_id, role, uri, reason, problem });
      if (!http) note('a local path, not in the object store (pods on other nodes cannot see it)', false);
      else if (role !== 'dumps') note('http(s) is read-only: manifests and outputs need the object store', true);
      else if (run.dump_access === 'http') note('read over HTTP from a mirror (dump_access: http)', false);
      else
        note(
          'an HTTP dump with dump_access object-store: stage it (`tokenize-wiki stage`) and list the staged URI, or set dump_access: http',
          true,
        );
      return;
    }
    const keyPrefix = folderOf(location.key);
    const id = `${location.bucket}/${keyPrefix}`;
    const entry = byPrefix.get(id) ?? { runs: [], roles: [], bucket: location.bucket, keyPrefix };
    if (!entry.runs.includes(run.run_id)) entry.runs.push(run.run_id);
    if (!entry.roles.includes(role)) entry.roles.push(role);
    entry.roles.sort((a, b) => ROLE_ORDER.indexOf(a) - ROLE_ORDER.indexOf(b));
    byPrefix.set(id, entry);
  };
  // A dump or manifest is a folder (ends in /) or one file: probe the folder it is in.
  const folder = (key: string): string =>
    key === '' || key.endsWith('/') ? key : key.slice(0, key.lastIndexOf('/') + 1);
  const asPrefix = (key: string): string => (key === '' || key.endsWith('/') ? key : `${key}/`);
  for (const run of runs) {
    for (const dump of run.dumps) add(run, 'dumps', dump, folder);
    add(run, 'manifests', run.manifest_uri, folder);
    add(run, 'outputs', run.output_prefix, asPrefix);
  }
  const locations = [...byPrefix.values()].sort((a, b) =>
    `${a.bucket}/${a.keyPrefix}`.localeCompare(`${b.bucket}/${b.keyPrefix}`),
  );
  return { locations, skipped };
}

/**
 * `buckets ensure`: creates missing buckets, adds missing lifecycle rules, and checks with the configured credentials
 * that each prefix can be written, read, listed and deleted from (a probe object under `<prefix>_probe/`).
 * Idempotent: a second call changes nothing and reports the same.
 */
export async function ensureBuckets(
  client: S3Client,
  runs: readonly RunStorage[],
  options: EnsureOptions,
): Promise<EnsureReport> {
  const { locations, skipped } = runPrefixes(runs);
  const bucketStates = new Map<string, Outcome>();
  for (const bucket of new Set(locations.map((l) => l.bucket)))
    bucketStates.set(bucket, await ensureBucket(client, bucket));
  const lifecycles = new Map<string, Outcome>();
  for (const [bucket, state] of bucketStates) {
    const wanted = rulesFor(
      locations.filter((l) => l.bucket === bucket),
      options,
    );
    if (!options.lifecycle || wanted.length === 0)
      lifecycles.set(bucket, { ok: undefined, text: options.lifecycle ? '-' : 'skipped' });
    else if (state.ok !== true) lifecycles.set(bucket, { ok: undefined, text: 'no bucket' });
    else lifecycles.set(bucket, await ensureLifecycle(client, bucket, wanted));
  }
  const reports: PrefixReport[] = [];
  for (const location of locations) {
    const bucketState = bucketStates.get(location.bucket) ?? NA;
    const checks =
      bucketState.ok === true
        ? await probe(client, location)
        : { write: NA, read: NA, list: NA, delete: NA, ifNoneMatch: NA };
    reports.push({
      ...location,
      uri: `s3://${location.bucket}/${location.keyPrefix}`,
      bucketState,
      ...checks,
      lifecycle: lifecycles.get(location.bucket) ?? NA,
    });
  }
  const problems: string[] = [];
  for (const r of reports) {
    for (const [what, outcome] of Object.entries({
      bucket: r.bucketState,
      write: r.write,
      read: r.read,
      list: r.list,
      delete: r.delete,
      'If-None-Match': r.ifNoneMatch,
      lifecycle: r.lifecycle,
    })) {
      if (outcome.ok === false) problems.push(`${r.uri}: ${what}: ${outcome.text}`);
    }
  }
  for (const s of skipped.filter((x) => x.problem)) problems.push(`${s.uri} (${s.run}, ${s.role}): ${s.reason}`);
  // Several prefixes of one bucket share its outcome: say it once.
  const unique = [...new Set(problems)];
  return { locations: reports, skipped, problems: unique, ok: unique.length === 0 };
}

/** Our lifecycle rules for the prefixes of one bucket: output prefixes get state + multipart, dump folders multipart. */
function rulesFor(locations: readonly RunPrefix[], options: EnsureOptions): LifecycleRule[] {
  const multipartDays = options.multipartDays ?? DEFAULT_MULTIPART_DAYS;
  const rules = new Map<string, LifecycleRule>();
  for (const l of locations) {
    if (l.roles.includes('outputs')) {
      const prefix = `s3://${l.bucket}/${l.keyPrefix}`;
      for (const rule of outputRules({
        outputPrefix: prefix,
        stateDays: options.stateDays ?? DEFAULT_STATE_DAYS,
        multipartDays,
      }).rules)
        rules.set(rule.ID ?? '', rule);
    } else if (l.roles.includes('dumps')) {
      // `stage` uploads dump parts of ~600 MB in parts; an interrupted stage leaves parts behind.
      const rule = multipartRule(l.keyPrefix, multipartDays);
      rules.set(rule.ID ?? '', rule);
    }
  }
  return [...rules.values()];
}

async function ensureBucket(client: S3Client, bucket: string): Promise<Outcome> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return { ok: true, text: 'exists' };
  } catch (error) {
    if (status(error) !== 404 && name(error) !== 'NotFound' && name(error) !== 'NoSuchBucket') {
      // A HEAD answer has no body, so no error code: ask again with a request whose error says why.
      try {
        await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }));
        return { ok: true, text: 'exists' };
      } catch (listError) {
        return { ok: false, text: reason(listError, 'cannot see the bucket') };
      }
    }
  }
  try {
    const region = await client.config.region();
    // us-east-1 is the one region AWS refuses as an explicit LocationConstraint.
    const configuration =
      region && region !== 'us-east-1' && !(await customEndpoint(client))
        ? { LocationConstraint: region as never }
        : undefined;
    await client.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: configuration }));
    return { ok: true, text: 'created' };
  } catch (error) {
    if (name(error) === 'BucketAlreadyOwnedByYou') return { ok: true, text: 'exists' };
    return { ok: false, text: `missing, cannot create: ${reason(error, 'create failed')}` };
  }
}

async function customEndpoint(client: S3Client): Promise<boolean> {
  return client.config.endpoint !== undefined && (await client.config.endpoint()) !== undefined;
}

async function ensureLifecycle(client: S3Client, bucket: string, wanted: LifecycleRule[]): Promise<Outcome> {
  try {
    const change = await mergeLifecycle(client, bucket, wanted, 'add-missing');
    return { ok: true, text: change.added.length > 0 ? `added ${change.added.length} rule(s)` : 'present' };
  } catch (error) {
    return { ok: false, text: reason(error, 'cannot set lifecycle rules') };
  }
}

async function probe(
  client: S3Client,
  l: RunPrefix,
): Promise<Pick<PrefixReport, 'write' | 'read' | 'list' | 'delete' | 'ifNoneMatch'>> {
  const Bucket = l.bucket;
  const Key = `${l.keyPrefix}_probe/${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const body = `tokenize-wiki buckets ensure probe ${new Date().toISOString()}`;
  const write = await outcome(async () => {
    await client.send(new PutObjectCommand({ Bucket, Key, Body: body }));
    return 'ok';
  }, 'cannot write');
  const read = await outcome(async () => {
    if (write.ok) {
      const got = await (await client.send(new GetObjectCommand({ Bucket, Key }))).Body?.transformToString();
      if (got !== body) throw new Error('read back different bytes than written');
      return 'ok';
    }
    // Nothing written to read back: a missing key answers NoSuchKey to a reader and AccessDenied to anyone else.
    try {
      await client.send(new GetObjectCommand({ Bucket, Key }));
    } catch (error) {
      if (name(error) === 'NoSuchKey' || status(error) === 404) return 'ok';
      throw error;
    }
    return 'ok';
  }, 'cannot read');
  const list = await outcome(async () => {
    await client.send(new ListObjectsV2Command({ Bucket, Prefix: l.keyPrefix, MaxKeys: 1 }));
    return 'ok';
  }, 'cannot list');
  const ifNoneMatch: Outcome =
    !l.roles.includes('outputs') || !write.ok
      ? NA
      : await outcome(async () => {
          try {
            await client.send(new PutObjectCommand({ Bucket, Key, Body: 'overwritten', IfNoneMatch: '*' }));
          } catch (error) {
            if (status(error) === 412 || name(error) === 'PreconditionFailed') return 'ok';
            throw error;
          }
          throw new Error(
            'ignored: an existing object was overwritten (the store does not support conditional writes)',
          );
        }, 'conditional write failed');
  const del = await outcome(async () => {
    await client.send(new DeleteObjectCommand({ Bucket, Key }));
    return 'ok';
  }, 'cannot delete');
  return { write, read, list, delete: del, ifNoneMatch };
}

async function outcome(check: () => Promise<string>, failure: string): Promise<Outcome> {
  try {
    return { ok: true, text: await check() };
  } catch (error) {
    return { ok: false, text: reason(error, failure) };
  }
}

/** The report as a fixed-width table, then the problems (or "all good"). */
export function formatEnsureReport(report: EnsureReport): string {
  const header = ['PREFIX', 'ROLES', 'RUNS', 'BUCKET', 'WRITE', 'READ', 'LIST', 'DELETE', 'IF-NONE-MATCH', 'LIFECYCLE'];
  const cell = (o: Outcome): string => (o.ok === false ? 'MISSING' : o.text);
  const rows = report.locations.map((r) => [
    r.uri,
    r.roles.join(','),
    r.runs.join(','),
    cell(r.bucketState),
    cell(r.write),
    cell(r.read),
    cell(r.list),
    cell(r.delete),
    cell(r.ifNoneMatch),
    cell(r.lifecycle),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const s of report.skipped.filter((x) => !x.problem))
    out.push(`not checked: ${s.uri} (${s.run}, ${s.role}): ${s.reason}`);
  out.push('');
  if (report.ok) out.push(`all good: ${report.locations.length} prefix(es) readable and writable`);
  else out.push(`missing (${report.problems.length}):`, ...report.problems.map((p) => `  - ${p}`));
  return out.join('\n') + '\n';
}
