import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import type { JobBackend, JobInfo, JobSpec, JobStatus } from './backend.js';

const RayJob = z.object({
  submission_id: z.string().nullish(),
  status: z.enum(['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED']),
  message: z.string().nullish(),
  /** Unix ms: when the job was submitted; end_time when it reached a terminal status. */
  start_time: z.number().nullish(),
  end_time: z.number().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
});
type RayJob = z.infer<typeof RayJob>;

const iso = (ms: number | null | undefined): string | undefined => (ms ? new Date(ms).toISOString() : undefined);

/** A Ray job as the backend interface reports it; jobs without our metadata are not ours. */
export function rayJobInfo(job: RayJob): JobInfo | undefined {
  if (!job.submission_id || job.metadata?.run_id === undefined) return undefined;
  const status: JobStatus = job.status;
  return {
    id: job.submission_id,
    status,
    tasks: (job.metadata.tasks ?? '').split(',').filter(Boolean),
    ...(job.message ? { message: job.message } : {}),
    ...(job.start_time ? { submitted_at: iso(job.start_time) } : {}),
    ...(job.end_time ? { ended_at: iso(job.end_time) } : {}),
  };
}

export class RayJobsApiError extends Error {
  override name = 'RayJobsApiError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * Jobs through the Ray dashboard's REST API (`/api/jobs/`). Requests go through node:http rather than fetch: fetch
 * always sends `Sec-Fetch-Mode`, which Ray takes for a browser and answers POSTs with 405.
 */
export class RayJobsApiBackend implements JobBackend {
  readonly kind = 'ray-jobs-api';
  constructor(
    private readonly dashboardUrl: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async submit(job: JobSpec): Promise<void> {
    const body = {
      submission_id: job.id,
      entrypoint: job.entrypoint,
      // Without entrypoint resources the driver would run on the head; the CPUs are what run-tasks uses.
      entrypoint_num_cpus: job.cpus,
      metadata: { run_id: job.runId, batch: String(job.batch), tasks: job.tasks.join(',') },
    };
    const res = await this.call('POST', '/api/jobs/', body);
    if (res.status === 200) return;
    // A retried submit whose first try reached Ray: the id is taken by our own job, which is what we wanted.
    const existing = await this.get(job.id);
    if (existing?.metadata?.run_id === job.runId && existing.metadata.tasks === job.tasks.join(',')) return;
    throw new RayJobsApiError(`submit ${job.id}: HTTP ${res.status}: ${summary(res.text)}`, res.status);
  }

  async list(runId: string): Promise<JobInfo[]> {
    const res = await this.call('GET', '/api/jobs/');
    if (res.status !== 200)
      throw new RayJobsApiError(`list jobs: HTTP ${res.status}: ${summary(res.text)}`, res.status);
    const jobs = z.array(z.unknown()).parse(JSON.parse(res.text));
    const infos: JobInfo[] = [];
    for (const raw of jobs) {
      const parsed = RayJob.safeParse(raw);
      if (!parsed.success || parsed.data.metadata?.run_id !== runId) continue;
      const info = rayJobInfo(parsed.data);
      if (info) infos.push(info);
    }
    return infos;
  }

  async stop(id: string): Promise<void> {
    const res = await this.call('POST', `/api/jobs/${encodeURIComponent(id)}/stop`);
    if (res.status !== 200 && res.status !== 404)
      throw new RayJobsApiError(`stop ${id}: HTTP ${res.status}: ${summary(res.text)}`, res.status);
  }

  async delete(id: string): Promise<void> {
    const res = await this.call('DELETE', `/api/jobs/${encodeURIComponent(id)}`);
    if (res.status !== 200 && res.status !== 404)
      throw new RayJobsApiError(`delete ${id}: HTTP ${res.status}: ${summary(res.text)}`, res.status);
  }

  async logsTail(id: string, maxChars: number): Promise<string> {
    const res = await this.call('GET', `/api/jobs/${encodeURIComponent(id)}/logs`);
    if (res.status !== 200) return '';
    const parsed = z.object({ logs: z.string() }).safeParse(JSON.parse(res.text));
    return parsed.success ? parsed.data.logs.slice(-maxChars) : '';
  }

  private async get(id: string): Promise<RayJob | undefined> {
    const res = await this.call('GET', `/api/jobs/${encodeURIComponent(id)}`);
    if (res.status !== 200) return undefined;
    const parsed = RayJob.safeParse(JSON.parse(res.text));
    return parsed.success ? parsed.data : undefined;
  }

  private call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.dashboardUrl.replace(/\/*$/, '/'));
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        timeout: this.timeoutMs,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      });
      req.once('timeout', () => req.destroy(new Error(`${method} ${url.href}: no answer within ${this.timeoutMs} ms`)));
      req.once('error', (error) => reject(new RayJobsApiError(`${method} ${url.href}: ${error.message}`, 0)));
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.end(payload);
    });
  }
}

function summary(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
