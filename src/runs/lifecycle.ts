import type { LifecycleRule, S3Client } from '@aws-sdk/client-s3';
import { UsageError } from '../errors/index.js';
import { MARKERS_DIR, SHARDS_DIR, STATE_DIR, SUCCESS_KEY } from '../output/index.js';
// Loads the S3 SDK: imported directly (not through storage/index.ts), and this module is itself loaded lazily.
import {
  bucketPrefix,
  expire,
  mergeLifecycle,
  multipartRule,
  ruleId,
  type LifecycleChange,
} from '../storage/lifecycle.js';

/**
 * Bucket lifecycle rules for a run's output prefix: attempt records under `state/` and incomplete multipart uploads
 * expire; shards (with their markers and `_SUCCESS`, so "done iff marker exists" stays true) expire only when asked.
 */
export interface OutputLifecycle {
  /** `s3://bucket/key-prefix/` of a run. */
  outputPrefix: string;
  /** Days after which `state/` objects (attempts, quarantine, progress) are deleted. */
  stateDays: number;
  /** Days after which multipart uploads that never completed are aborted (their parts cost storage). */
  multipartDays: number;
  /** Days after which shards, markers and `_SUCCESS` are deleted; undefined keeps them forever. */
  shardsDays?: number;
}

/** Every kind of rule a run's output prefix may have: `lifecycle apply` owns them all for its prefix. */
const RULE_KINDS = ['state', 'multipart', 'shards', 'markers', 'success'] as const;

/** The rules a run's output prefix should have. */
export function outputRules(policy: OutputLifecycle): { bucket: string; keyPrefix: string; rules: LifecycleRule[] } {
  const { bucket, keyPrefix } = bucketPrefix(policy.outputPrefix);
  for (const [flag, days] of [
    ['state', policy.stateDays],
    ['multipart', policy.multipartDays],
    ['shards', policy.shardsDays],
  ] as const) {
    if (days !== undefined && (!Number.isInteger(days) || days < 1))
      throw new UsageError(`${flag} expiry: expected a whole number of days ≥ 1, got ${days}`);
  }
  const rules = [
    expire(ruleId('state', keyPrefix), `${keyPrefix}${STATE_DIR}`, policy.stateDays),
    multipartRule(keyPrefix, policy.multipartDays),
  ];
  if (policy.shardsDays !== undefined) {
    rules.push(
      expire(ruleId('shards', keyPrefix), `${keyPrefix}${SHARDS_DIR}`, policy.shardsDays),
      expire(ruleId('markers', keyPrefix), `${keyPrefix}${MARKERS_DIR}`, policy.shardsDays),
      expire(ruleId('success', keyPrefix), `${keyPrefix}${SUCCESS_KEY}`, policy.shardsDays),
    );
  }
  return { bucket, keyPrefix, rules };
}

/** `lifecycle apply`: the output prefix's rules, set (not just added) in the bucket's configuration. */
export function applyLifecycle(client: S3Client, policy: OutputLifecycle): Promise<LifecycleChange> {
  const { bucket, keyPrefix, rules } = outputRules(policy);
  return mergeLifecycle(client, bucket, rules, { owned: RULE_KINDS.map((kind) => ruleId(kind, keyPrefix)) });
}
