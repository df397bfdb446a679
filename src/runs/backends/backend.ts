/** Where a job is in its life; the same words as Ray's job status and KubeRay's `status.jobStatus`. */
export type JobStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'STOPPED';

export const TERMINAL: ReadonlySet<JobStatus> = new Set(['SUCCEEDED', 'FAILED', 'STOPPED']);

/** One job of a run as the backend reports it. */
export interface JobInfo {
  id: string;
  status: JobStatus;
  /** The task ids the job executes (from the job's metadata / annotations). */
  tasks: string[];
  /** Why it failed or what the backend says about it. */
  message?: string;
  /** ISO times; `started_at` is when the entrypoint started (absent while pending). */
  submitted_at?: string;
  started_at?: string;
  ended_at?: string;
}

/** What the reconciler asks a backend to run: `tokenize-wiki run-tasks` on a batch of tasks. */
export interface JobSpec {
  id: string;
  runId: string;
  batch: number;
  tasks: string[];
  entrypoint: string;
  cpus: number;
}

/** The one small interface every job backend implements (Ray Jobs REST API, KubeRay RayJobs). */
export interface JobBackend {
  readonly kind: string;
  submit(job: JobSpec): Promise<void>;
  /** Every job of this run the backend still knows, finished ones included. */
  list(runId: string): Promise<JobInfo[]>;
  /** Ask a job to stop; a job that is already finished or gone is not an error. */
  stop(id: string): Promise<void>;
  /** Forget a finished job (its record, logs, custom resource); a job that is gone is not an error. */
  delete(id: string): Promise<void>;
  /** The last `maxChars` characters of the job's driver log ('' if unavailable). */
  logsTail(id: string, maxChars: number): Promise<string>;
}
