import { describe, expect, it } from 'vitest';
import { rayJobInfoOf, rayJobObject, rayJobStatus } from '../../src/runs/backends/kuberay.js';
import { manifestEntrypoint, runTasksEntrypoint } from '../../src/runs/entrypoints.js';
import { kubeLeaseStep } from '../../src/runs/lease.js';
import { jobId, manifestJobId } from '../../src/runs/names.js';

const spec = {
  id: jobId('enwiki-20261122-cl100k', 7, 2),
  runId: 'enwiki-20261122-cl100k',
  batch: 7,
  tasks: ['enwiki_content-20261122-00003-t0001', 'enwiki_content-20261122-00003-t0002'],
  entrypoint: runTasksEntrypoint({
    manifestUri: 's3://tokenize-wiki/runs/x/manifest.json',
    outputPrefix: 's3://tokenize-wiki/runs/x',
    tasks: ['enwiki_content-20261122-00003-t0001', 'enwiki_content-20261122-00003-t0002'],
    cpus: 3,
  }),
  cpus: 3,
};

describe('RayJob object', () => {
  const object = rayJobObject(spec, { namespace: 'tokenize-wiki', rayCluster: 'tokenize-wiki' }) as {
    metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
    spec: Record<string, unknown>;
  };

  it('runs on the existing RayCluster, submitted over HTTP, with the CPUs of the job', () => {
    expect(object.spec).toMatchObject({
      clusterSelector: { 'ray.io/cluster': 'tokenize-wiki' },
      submissionMode: 'HTTPMode',
      entrypointNumCpus: 3,
      jobId: spec.id,
      entrypoint:
        'tokenize-wiki run-tasks --manifest-uri s3://tokenize-wiki/runs/x/manifest.json --output-prefix s3://tokenize-wiki/runs/x ' +
        '--tasks enwiki_content-20261122-00003-t0001,enwiki_content-20261122-00003-t0002 --concurrency 3',
    });
  });

  it('leaves out what KubeRay rejects or ignores with clusterSelector', () => {
    for (const key of [
      'backoffLimit',
      'rayClusterSpec',
      'ttlSecondsAfterFinished',
      'shutdownAfterJobFinishes',
      'activeDeadlineSeconds',
    ]) {
      expect(object.spec).not.toHaveProperty(key);
    }
  });

  it('is named ≤ 47 characters and labelled with run id and batch; tasks in an annotation', () => {
    expect(object.metadata.name).toBe('enwiki-20261122-cl100k-b00007-a2');
    expect(object.metadata.name.length).toBeLessThanOrEqual(47);
    expect(object.metadata.labels).toMatchObject({
      'tokenize-wiki/run-id': 'enwiki-20261122-cl100k',
      'tokenize-wiki/batch': '7',
    });
    for (const value of Object.values(object.metadata.labels))
      expect(value).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
    expect(object.metadata.annotations['tokenize-wiki/tasks']).toBe(spec.tasks.join(','));
  });

  it('reads back as the job it describes', () => {
    const info = rayJobInfoOf({
      ...object,
      metadata: { ...object.metadata, creationTimestamp: '2026-11-28T10:00:00Z' },
      status: { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running', startTime: '2026-11-28T10:00:03Z' },
    });
    expect(info).toEqual({
      id: spec.id,
      status: 'RUNNING',
      tasks: spec.tasks,
      submitted_at: '2026-11-28T10:00:00Z',
      started_at: '2026-11-28T10:00:03Z',
    });
  });

  it("starts from the Ray job's own start, which KubeRay renews when it resubmits the job on a new head", () => {
    const info = rayJobInfoOf({
      ...object,
      status: {
        jobStatus: 'RUNNING',
        jobDeploymentStatus: 'Running',
        startTime: '2026-11-28T10:00:00Z',
        rayJobInfo: { startTime: '2026-11-28T10:07:30Z' },
      },
    });
    expect(info.started_at).toBe('2026-11-28T10:07:30Z');
  });

  it("makes a missing manifest in a job with the run's planning settings", () => {
    const entrypoint = manifestEntrypoint({
      dumps: ['s3://d/index_name=enwiki_content/', 's3://d/b.json.gz'],
      manifest_uri: 's3://o/m.json',
      max_docs_per_task: 2000,
      text_field: 'source_text',
      encoding: 'o200k_base',
      append_eot: true,
      format: 'megatron',
    });
    expect(entrypoint).toBe(
      'tokenize-wiki manifest --dump s3://d/index_name=enwiki_content/ --dump s3://d/b.json.gz --manifest-uri s3://o/m.json ' +
        '--max-docs-per-task 2000 --text-field source_text --encoding o200k_base --append-eot --format megatron',
    );
    expect(manifestJobId('enwiki-20261122-cl100k', 1)).toBe('enwiki-20261122-cl100k-manifest-a1');
    expect(manifestJobId('a'.repeat(63), 12).length).toBeLessThanOrEqual(47);
  });

  it('quotes URIs a shell would split', () => {
    expect(
      runTasksEntrypoint({ manifestUri: "/data/my run/it's.json", outputPrefix: 'o', tasks: ['a'], cpus: 1 }),
    ).toContain(`'/data/my run/it'\\''s.json'`);
  });
});

describe('RayJob status mapping', () => {
  it.each([
    [{}, 'PENDING'],
    [{ jobDeploymentStatus: 'Initializing' }, 'PENDING'],
    [{ jobStatus: 'PENDING', jobDeploymentStatus: 'Waiting' }, 'PENDING'],
    [{ jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' }, 'RUNNING'],
    [{ jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' }, 'SUCCEEDED'],
    [{ jobStatus: 'FAILED', jobDeploymentStatus: 'Complete' }, 'FAILED'],
    [{ jobStatus: 'STOPPED', jobDeploymentStatus: 'Complete' }, 'STOPPED'],
    // Deadline exceeded or the operator gave up: Failed although Ray may still say RUNNING.
    [{ jobStatus: 'RUNNING', jobDeploymentStatus: 'Failed', reason: 'DeadlineExceeded' }, 'FAILED'],
    [
      { jobDeploymentStatus: 'ValidationFailed', message: 'backoffLimit is not supported with clusterSelector' },
      'FAILED',
    ],
    [{ jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Failed' }, 'SUCCEEDED'],
  ])('%j → %s', (status, expected) => {
    expect(rayJobStatus(status).status).toBe(expected);
  });

  it('carries the reason of a failed deployment', () => {
    expect(
      rayJobStatus({ jobDeploymentStatus: 'ValidationFailed', reason: 'ValidationFailed', message: 'bad spec' })
        .message,
    ).toBe('ValidationFailed: bad spec');
  });
});

describe('Kubernetes Lease steps', () => {
  const now = Date.parse('2026-11-28T10:00:00Z');
  it('creates a missing lease', () => {
    expect(kubeLeaseStep(undefined, 'l', 'me', 120, now)).toMatchObject({
      op: 'create',
      body: { metadata: { name: 'l' }, spec: { holderIdentity: 'me', leaseDurationSeconds: 120 } },
    });
  });
  it('waits while another holder’s lease is fresh', () => {
    const existing = {
      metadata: { name: 'l', resourceVersion: '5' },
      spec: { holderIdentity: 'other', leaseDurationSeconds: 120, renewTime: new Date(now - 60_000) },
    };
    expect(kubeLeaseStep(existing, 'l', 'me', 120, now)).toEqual({
      op: 'wait',
      holder: 'other',
      expires_at: '2026-11-28T10:01:00.000Z',
    });
  });
  it('takes over an expired lease with the read resourceVersion (a conflict means someone was faster)', () => {
    const existing = {
      metadata: { name: 'l', resourceVersion: '5' },
      spec: {
        holderIdentity: 'other',
        leaseDurationSeconds: 120,
        renewTime: new Date(now - 121_000),
        leaseTransitions: 2,
      },
    };
    expect(kubeLeaseStep(existing, 'l', 'me', 120, now)).toMatchObject({
      op: 'replace',
      body: { metadata: { resourceVersion: '5' }, spec: { holderIdentity: 'me', leaseTransitions: 3 } },
    });
  });
  it('renews its own lease without counting a transition', () => {
    const existing = {
      metadata: { name: 'l', resourceVersion: '9' },
      spec: { holderIdentity: 'me', leaseDurationSeconds: 120, renewTime: new Date(now - 10_000), leaseTransitions: 1 },
    };
    expect(kubeLeaseStep(existing, 'l', 'me', 120, now)).toMatchObject({
      op: 'replace',
      body: { spec: { holderIdentity: 'me', leaseTransitions: 1 } },
    });
  });
});
