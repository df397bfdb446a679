import { createHash } from 'node:crypto';
import {
  DeleteBucketLifecycleCommand,
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { UsageError } from '../errors/index.js';
import { parseUri } from './uri.js';

/** Bucket lifecycle rules that belong to one key prefix, merged into a bucket's configuration without clobbering others. */

/** What `mergeLifecycle` did to one bucket. */
export interface LifecycleChange {
  bucket: string;
  /** IDs of our rules for this prefix, after the change. */
  ours: string[];
  /** Rules of other prefixes or other tools, kept as they were. */
  kept: number;
  /** Our rules that were not there before. */
  added: string[];
  /** Our rules that were there before and are gone now (e.g. shard expiry turned off). */
  removed: string[];
  changed: boolean;
}

/** Rule IDs are at most 255 characters on AWS; a long prefix is replaced by its hash so the ID stays stable. */
export function ruleId(kind: string, keyPrefix: string): string {
  const id = `tokenize-wiki:${kind}:${keyPrefix}`;
  return id.length <= 255 ? id : `tokenize-wiki:${kind}:sha256-${createHash('sha256').update(keyPrefix).digest('hex')}`;
}

/** Bucket and key prefix (ending in `/`, or '' for a whole bucket) of an s3:// prefix URI. */
export function bucketPrefix(uri: string): { bucket: string; keyPrefix: string } {
  const location = parseUri(uri);
  if (location.scheme !== 's3') throw new UsageError(`${uri}: lifecycle rules need an s3:// prefix`);
  const key = location.key.replace(/^\/+/, '');
  return { bucket: location.bucket, keyPrefix: key === '' || key.endsWith('/') ? key : `${key}/` };
}

export function expire(id: string, prefix: string, days: number): LifecycleRule {
  return { ID: id, Status: 'Enabled', Filter: { Prefix: prefix }, Expiration: { Days: days } };
}

/** Rules that abort incomplete multipart uploads under a key prefix (also used for staged dumps). */
export function multipartRule(keyPrefix: string, days: number): LifecycleRule {
  return {
    ID: ruleId('multipart', keyPrefix),
    Status: 'Enabled',
    Filter: { Prefix: keyPrefix },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: days },
  };
}

/** The bucket's current rules; none when the bucket has no lifecycle configuration. */
export async function readLifecycle(client: S3Client, bucket: string): Promise<LifecycleRule[]> {
  try {
    const out = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
    return out.Rules ?? [];
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchLifecycleConfiguration') return [];
    throw error;
  }
}

/**
 * Merges `desired` (our rules) into a bucket's configuration; rules of other prefixes of the same bucket (other runs,
 * other tools) are kept, never clobbered. `owned` makes every rule whose ID it lists equal to `desired` (rules no
 * longer wanted are removed); `add-missing` only adds rules whose ID is absent, so a setting someone made with
 * `lifecycle apply` survives `buckets ensure`. Nothing is written when nothing changes. S3 has no conditional write for
 * lifecycle configurations, so two concurrent writers on one bucket may lose one update; re-running fixes it.
 */
export async function mergeLifecycle(
  client: S3Client,
  bucket: string,
  desired: readonly LifecycleRule[],
  mode: { owned: readonly string[] } | 'add-missing',
): Promise<LifecycleChange> {
  const current = await readLifecycle(client, bucket);
  const desiredIds = new Set(desired.map((r) => r.ID ?? ''));
  let next: LifecycleRule[];
  let removed: string[] = [];
  let kept: number;
  if (mode === 'add-missing') {
    const present = new Set(current.map((r) => r.ID ?? ''));
    next = [...current, ...desired.filter((r) => !present.has(r.ID ?? ''))];
    kept = current.filter((r) => !desiredIds.has(r.ID ?? '')).length;
  } else {
    const owned = new Set([...mode.owned, ...desiredIds]);
    const others = current.filter((r) => !owned.has(r.ID ?? ''));
    removed = current.map((r) => r.ID ?? '').filter((id) => owned.has(id) && !desiredIds.has(id));
    next = [...others, ...desired];
    kept = others.length;
  }
  const changed = canonical(current) !== canonical(next);
  if (changed) {
    if (next.length === 0) await client.send(new DeleteBucketLifecycleCommand({ Bucket: bucket }));
    else
      await client.send(
        new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: next } }),
      );
  }
  const before = new Set(current.map((r) => r.ID ?? ''));
  const added = [...desiredIds].filter((id) => !before.has(id));
  return { bucket, ours: [...desiredIds], kept, added, removed, changed };
}

/** Order- and formatting-independent form of a rule list, to tell whether a write is needed. */
function canonical(rules: readonly LifecycleRule[]): string {
  return JSON.stringify(
    rules
      .map((r) => ({
        id: r.ID ?? '',
        status: r.Status,
        prefix: r.Filter?.Prefix ?? r.Prefix ?? '',
        filter: r.Filter && Object.keys(r.Filter).some((k) => k !== 'Prefix') ? r.Filter : undefined,
        expiration: r.Expiration?.Days ?? r.Expiration?.Date?.toISOString(),
        abort: r.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
        other: [
          r.Transitions,
          r.NoncurrentVersionExpiration,
          r.NoncurrentVersionTransitions,
          r.Expiration?.ExpiredObjectDeleteMarker,
        ],
      }))
      .sort((a, b) => a.id.localeCompare(b.id)),
  );
}

/** One line per rule, for people: `tokenize-wiki:state:runs/x/  runs/x/state/  expire after 30 days`. */
export function describeRule(rule: LifecycleRule): string {
  const prefix = rule.Filter?.Prefix ?? rule.Prefix ?? '';
  const actions = [
    rule.Expiration?.Days !== undefined ? `expire after ${rule.Expiration.Days} days` : undefined,
    rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation !== undefined
      ? `abort incomplete multipart uploads after ${rule.AbortIncompleteMultipartUpload.DaysAfterInitiation} days`
      : undefined,
  ].filter(Boolean);
  return `${rule.ID ?? '(no id)'}  prefix "${prefix}"  ${actions.join(', ') || '(other actions)'}${rule.Status === 'Enabled' ? '' : ' (disabled)'}`;
}
