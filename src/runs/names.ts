import { createHash } from 'node:crypto';

/** KubeRay's limit on RayJob names (it derives other object names from them); also used for Ray submission ids. */
export const MAX_JOB_NAME = 47;

/**
 * The id of a run's job: `<run>-b<batch>-a<attempt>`, lowercase and label-safe, at most 47 characters, so the same
 * string is the Ray `submission_id` and the RayJob name. A run id too long to fit is cut and given a short hash, so
 * two long run ids that share a prefix still get different job ids. Batch numbers are never reused within a run.
 */
export function jobId(runId: string, batch: number, attempt: number): string {
  const suffix = `-b${String(batch).padStart(5, '0')}-a${attempt}`;
  return stemOf(runId, MAX_JOB_NAME - suffix.length) + suffix;
}

/** The run id, or when longer than `room` its start and a short hash of the whole (so long ids stay apart). */
function stemOf(runId: string, room: number): string {
  if (runId.length <= room) return runId;
  const hash = createHash('sha256').update(runId).digest('hex').slice(0, 6);
  return `${runId.slice(0, room - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

/** The batch number inside a job id made by `jobId`, or undefined for ids made by something else. */
export function batchOf(id: string): number | undefined {
  const match = /-b(\d+)-a\d+$/.exec(id);
  return match ? Number(match[1]) : undefined;
}

/** The id of the job that makes a run's manifest (`manifest_in_job`): `<run>-manifest-a<attempt>`, ≤ 47 characters. */
export function manifestJobId(runId: string, attempt: number): string {
  const suffix = `-manifest-a${attempt}`;
  return stemOf(runId, MAX_JOB_NAME - suffix.length) + suffix;
}

/** Whether a job id was made by `manifestJobId`. */
export function isManifestJobId(id: string): boolean {
  return /-manifest-a\d+$/.test(id);
}
