/** The few Ray Jobs REST calls the bench needs (submit, wait, logs) against the bench's own local head. */
import { request } from 'node:http';

/**
 * JSON over node:http rather than fetch: undici's fetch sends Sec-Fetch-* headers, and the Ray dashboard refuses
 * mutating requests that look like browser traffic (HTTP 405).
 */
function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} }, (res) => {
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
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface FinishedJob {
  status: string;
  /** Seconds from the job's start to its end, as the head recorded them. */
  wallS: number;
  logs: string;
}

interface JobInfo {
  status: string;
  start_time?: number;
  end_time?: number;
  message?: string;
}

export async function runRayJob(
  dashboardUrl: string,
  entrypoint: string,
  opts: { entrypointNumCpus?: number; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<FinishedJob> {
  const submit = await call('POST', `${dashboardUrl}/api/jobs/`, {
    entrypoint,
    entrypoint_num_cpus: opts.entrypointNumCpus ?? 0,
    runtime_env: opts.env ? { env_vars: opts.env } : undefined,
  });
  if (submit.status !== 200) throw new Error(`Ray job submission failed: HTTP ${submit.status} ${submit.text.slice(0, 300)}`);
  const id = (submit.json as { submission_id: string }).submission_id;
  const deadline = Date.now() + (opts.timeoutMs ?? 15 * 60_000);
  for (;;) {
    const info = (await call('GET', `${dashboardUrl}/api/jobs/${id}`)).json as JobInfo;
    if (['SUCCEEDED', 'FAILED', 'STOPPED'].includes(info.status)) {
      const logs = ((await call('GET', `${dashboardUrl}/api/jobs/${id}/logs`)).json as { logs: string }).logs;
      if (info.status !== 'SUCCEEDED') {
        throw new Error(`Ray job ${id} ${info.status}: ${info.message ?? ''} ${logs.trim().split('\n').slice(-5).join(' | ')}`);
      }
      return { status: info.status, wallS: ((info.end_time ?? 0) - (info.start_time ?? 0)) / 1000, logs };
    }
    if (Date.now() > deadline) throw new Error(`Ray job ${id} still ${info.status} after the bench's timeout`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
