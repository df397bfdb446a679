import type { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { RayJobsApiBackend } from './ray-jobs-api.js';
import type { JobBackend, JobInfo, JobSpec, JobStatus } from './backend.js';
import { httpStatusOf, kubeApi } from '../kube-client.js';

export const RAYJOB = { group: 'ray.io', version: 'v1', plural: 'rayjobs' } as const;
export const LABELS = {
  runId: 'tokenize-wiki/run-id',
  batch: 'tokenize-wiki/batch',
} as const;
/** Task lists outgrow label values (63 chars), so they live in an annotation and in spec.metadata. */
export const TASKS_ANNOTATION = 'tokenize-wiki/tasks';

export interface KubeRayTarget {
  namespace: string;
  rayCluster: string;
}

/**
 * The RayJob of one batch, on the existing RayCluster. What it leaves out is deliberate (KubeRay with
 * `clusterSelector`): no `backoffLimit` (values > 0 are rejected; the submitter retries by resubmitting), no
 * `ttlSecondsAfterFinished`/`shutdownAfterJobFinishes` (they never delete the RayJob; the submitter deletes finished
 * ones after `rayjob_ttl_seconds`), no `activeDeadlineSeconds` (it marks the RayJob Failed without stopping the Ray
 * job; the submitter stops timed-out jobs itself).
 */
export function rayJobObject(job: JobSpec, target: KubeRayTarget): Record<string, unknown> {
  return {
    apiVersion: `${RAYJOB.group}/${RAYJOB.version}`,
    kind: 'RayJob',
    metadata: {
      name: job.id,
      namespace: target.namespace,
      labels: {
        'app.kubernetes.io/name': 'tokenize-wiki',
        'app.kubernetes.io/component': 'job',
        [LABELS.runId]: job.runId,
        [LABELS.batch]: String(job.batch),
      },
      annotations: { [TASKS_ANNOTATION]: job.tasks.join(',') },
    },
    spec: {
      clusterSelector: { 'ray.io/cluster': target.rayCluster },
      // The operator submits over HTTP: no submitter pod per job.
      submissionMode: 'HTTPMode',
      // The Ray submission id equals the RayJob name, so logs and the dashboard show the same id.
      jobId: job.id,
      entrypoint: job.entrypoint,
      entrypointNumCpus: job.cpus,
      metadata: { run_id: job.runId, batch: String(job.batch), tasks: job.tasks.join(',') },
    },
  };
}

const RayJobObject = z.object({
  metadata: z.object({
    name: z.string(),
    creationTimestamp: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  status: z
    .object({
      jobId: z.string().optional(),
      jobStatus: z.string().optional(),
      jobDeploymentStatus: z.string().optional(),
      reason: z.string().optional(),
      message: z.string().optional(),
      /** When the RayJob was initialized and when it reached a terminal deployment status. */
      startTime: z.string().optional(),
      endTime: z.string().optional(),
      /** The Ray job's own start and end, as the head reports them. */
      rayJobInfo: z.object({ startTime: z.string().optional(), endTime: z.string().optional() }).optional(),
      dashboardURL: z.string().optional(),
    })
    .optional(),
});
export type RayJobObject = z.infer<typeof RayJobObject>;

/**
 * Status of a RayJob in the backend's words. `jobDeploymentStatus` Failed / ValidationFailed count as FAILED even
 * while `jobStatus` still says RUNNING or is empty (the Ray job never started or the operator gave up on it);
 * otherwise `jobStatus` decides, and an empty one means the job has not reached Ray yet.
 */
export function rayJobStatus(status: RayJobObject['status']): { status: JobStatus; message?: string } {
  const deployment = status?.jobDeploymentStatus ?? '';
  const job = status?.jobStatus ?? '';
  const why = [status?.reason, status?.message].filter(Boolean).join(': ') || undefined;
  if ((deployment === 'Failed' || deployment === 'ValidationFailed') && job !== 'SUCCEEDED') {
    return { status: 'FAILED', message: why ?? `RayJob ${deployment}` };
  }
  if (job === 'SUCCEEDED' || job === 'FAILED' || job === 'STOPPED' || job === 'RUNNING')
    return { status: job, ...(why ? { message: why } : {}) };
  return { status: 'PENDING', ...(why ? { message: why } : {}) };
}

export function rayJobInfoOf(object: unknown): JobInfo {
  const parsed = RayJobObject.parse(object);
  const { status, message } = rayJobStatus(parsed.status);
  // The Ray job's start, not the RayJob's: when a head is lost, KubeRay (HTTPMode) submits the Ray job again under
  // the same id once the new head's dashboard answers 404 for it, and records the new start in rayJobInfo
  // (ray-operator/controllers/ray/rayjob_controller.go, v1.6.2: the JobDeploymentStatusRunning case, GetJobInfo's
  // IsBadRequest branch and the RayJobStatusInfo.StartTime update); status.startTime keeps the first one.
  const startedAt = parsed.status?.rayJobInfo?.startTime ?? parsed.status?.startTime;
  return {
    id: parsed.metadata.name,
    status,
    tasks: (parsed.metadata.annotations?.[TASKS_ANNOTATION] ?? '').split(',').filter(Boolean),
    ...(message ? { message } : {}),
    ...(parsed.metadata.creationTimestamp ? { submitted_at: parsed.metadata.creationTimestamp } : {}),
    ...(startedAt ? { started_at: startedAt } : {}),
    ...(parsed.status?.endTime ? { ended_at: parsed.status.endTime } : {}),
  };
}

/** Jobs as KubeRay RayJob custom resources on the long-lived RayCluster. */
export class KubeRayBackend implements JobBackend {
  readonly kind = 'kuberay';
  private readonly api: Promise<CustomObjectsApi>;

  constructor(
    private readonly target: KubeRayTarget,
    kubeConfig?: KubeConfig,
  ) {
    this.api = kubeApi((kube, config) => config.makeApiClient(kube.CustomObjectsApi), kubeConfig);
  }

  async submit(job: JobSpec): Promise<void> {
    try {
      await (
        await this.api
      ).createNamespacedCustomObject({
        ...RAYJOB,
        namespace: this.target.namespace,
        body: rayJobObject(job, this.target),
      });
    } catch (error) {
      // A retried create whose first try went through: the RayJob is ours if it carries the same tasks.
      if (httpStatusOf(error) !== 409) throw error;
      const existing = rayJobInfoOf(
        await (await this.api).getNamespacedCustomObject({ ...RAYJOB, namespace: this.target.namespace, name: job.id }),
      );
      if (existing.tasks.join(',') !== job.tasks.join(',')) throw error;
    }
  }

  async list(runId: string): Promise<JobInfo[]> {
    const list = z.object({ items: z.array(z.unknown()) }).parse(
      await (
        await this.api
      ).listNamespacedCustomObject({
        ...RAYJOB,
        namespace: this.target.namespace,
        labelSelector: `${LABELS.runId}=${runId}`,
      }),
    );
    return list.items.map(rayJobInfoOf);
  }

  /** Deleting the RayJob makes the operator's finalizer stop the Ray job (a RayJob on a selected cluster has no suspend). */
  async stop(id: string): Promise<void> {
    await this.delete(id);
  }

  async delete(id: string): Promise<void> {
    try {
      await (
        await this.api
      ).deleteNamespacedCustomObject({
        ...RAYJOB,
        namespace: this.target.namespace,
        name: id,
        propagationPolicy: 'Background',
      });
    } catch (error) {
      if (httpStatusOf(error) !== 404) throw error;
    }
  }

  async logsTail(id: string, maxChars: number): Promise<string> {
    let object: RayJobObject;
    try {
      object = RayJobObject.parse(
        await (await this.api).getNamespacedCustomObject({ ...RAYJOB, namespace: this.target.namespace, name: id }),
      );
    } catch (error) {
      if (httpStatusOf(error) === 404) return '';
      throw error;
    }
    const dashboard = object.status?.dashboardURL;
    const fallback = [object.status?.reason, object.status?.message].filter(Boolean).join(': ');
    if (!dashboard) return fallback;
    // The operator records the dashboard as host:port; the driver log lives there, not in the custom resource.
    const url = /^https?:\/\//.test(dashboard) ? dashboard : `http://${dashboard}`;
    const logs = await new RayJobsApiBackend(url, 10_000)
      .logsTail(object.status?.jobId ?? id, maxChars)
      .catch(() => '');
    return logs || fallback;
  }
}
