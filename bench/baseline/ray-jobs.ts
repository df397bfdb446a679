/** The few Ray Jobs REST calls the bench needs (submit, wait, logs) against the bench's own local head. */
import { request } from 'node:http';

/**
 * JSON over node:http rather than fetch: undici's fetch sends Sec-Fetch-* headers, and the Ray dashboard refuses
 * mutating requests that look like browser traffic (HTTP 405).
 */
function call(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            // non-JSON error pages are reported through text
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface FinishedJob {
  status: string;
  /**
   * Seconds from our submit request until we saw the job end (polled every POLL_MS). Our clock, not the head's
   * start_time: the head stamps start_time inside the submit request, which can itself take seconds.
   */
  wallS: number;
  /**
   * Job start-up: seconds from our submit request until the head first reported the job RUNNING (its entrypoint
   * process started), polled every POLL_MS, so up to that much late. The entrypoint's own start (Python importing
   * ray, Node loading the CLI) comes after this and is part of wallS, not of startupS.
   */
  startupS: number;
  logs: string;
}

interface JobInfo {
  status: string;
  message?: string;
}

const POLL_MS = 100;
const SUBMIT_RETRY_MS = 60_000;

export async function runRayJob(
  dashboardUrl: string,
  entrypoint: string,
  opts: { entrypointNumCpus?: number; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<FinishedJob> {
  const body = {
    entrypoint,
    entrypoint_num_cpus: opts.entrypointNumCpus ?? 0,
    runtime_env: opts.env ? { env_vars: opts.env } : undefined,
  };
  let submittedAt = Date.now();
  let submit = await call('POST', `${dashboardUrl}/api/jobs/`, body);
  // A fresh head answers GET /api/jobs/ before its job agent takes submissions ("No available agent to submit job",
  // HTTP 500/503), longer on a loaded machine: such a refusal created no job, so it is retried for a while.
  for (const giveUpAt = submittedAt + SUBMIT_RETRY_MS; submit.status >= 500 && Date.now() < giveUpAt;) {
    await new Promise((r) => setTimeout(r, 500));
    submittedAt = Date.now();
    submit = await call('POST', `${dashboardUrl}/api/jobs/`, body);
  }
  if (submit.status !== 200)
    throw new Error(`Ray job submission failed: HTTP ${submit.status} ${submit.text.slice(0, 300)}`);
  const id = (submit.json as { submission_id: string }).submission_id;
  const deadline = Date.now() + (opts.timeoutMs ?? 15 * 60_000);
  let runningAt: number | undefined;
  for (;;) {
    const info = (await call('GET', `${dashboardUrl}/api/jobs/${id}`)).json as JobInfo;
    // A job that ends between two polls was running by then at the latest.
    if (runningAt === undefined && info.status !== 'PENDING') runningAt = Date.now();
    if (['SUCCEEDED', 'FAILED', 'STOPPED'].includes(info.status)) {
      const endedAt = Date.now();
      const logs = ((await call('GET', `${dashboardUrl}/api/jobs/${id}/logs`)).json as { logs: string }).logs;
      if (info.status !== 'SUCCEEDED') {
        throw new Error(
          `Ray job ${id} ${info.status}: ${info.message ?? ''} ${logs.trim().split('\n').slice(-5).join(' | ')}`,
        );
      }
      return {
        status: info.status,
        wallS: (endedAt - submittedAt) / 1000,
        startupS: ((runningAt ?? endedAt) - submittedAt) / 1000,
        logs,
      };
    }
    if (Date.now() > deadline) throw new Error(`Ray job ${id} still ${info.status} after the bench's timeout`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
