import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunProgress } from './progress.js';
import type { TickReport } from './reconcile.js';

/** Every metric the submitter exports (alert rules and dashboards may reference only these). */
export const METRIC_NAMES = [
  'tokenize_wiki_tasks',
  'tokenize_wiki_docs',
  'tokenize_wiki_tokens_done',
  'tokenize_wiki_failed_attempts',
  'tokenize_wiki_throughput_docs_per_second',
  'tokenize_wiki_throughput_tokens_per_second',
  'tokenize_wiki_eta_seconds',
  'tokenize_wiki_run_complete',
  'tokenize_wiki_run_paused',
  'tokenize_wiki_jobs_in_flight',
  'tokenize_wiki_job_duration_seconds',
  'tokenize_wiki_jobs_ended_total',
  'tokenize_wiki_jobs_submitted_total',
  'tokenize_wiki_reconcile_duration_seconds',
  'tokenize_wiki_reconcile_total',
  'tokenize_wiki_last_successful_reconcile_timestamp_seconds',
  'tokenize_wiki_lease_held',
] as const;

/**
 * The submitter daemon's Prometheus metrics, all labelled `run_id`. Levels (tasks, docs, throughput, ETA) are set
 * from the tick's progress, which comes from markers, so they are right again after a restart; counters and
 * histograms count what this process saw.
 */
export class SubmitterMetrics {
  private readonly levels = new Registry();
  /** Counters and histograms: left out of `registry` when they would restart at every push (a new process per tick). */
  private readonly counting = new Registry();
  readonly registry: Registry;
  private readonly tasks = new Gauge({
    name: 'tokenize_wiki_tasks',
    help: 'Tasks of the run by state (total, done, in_flight, pending, failed, quarantined)',
    labelNames: ['run_id', 'state'],
    registers: [this.levels],
  });
  private readonly docs = new Gauge({
    name: 'tokenize_wiki_docs',
    help: 'Docs of the run (total) and docs with a marker (done)',
    labelNames: ['run_id', 'state'],
    registers: [this.levels],
  });
  private readonly tokens = new Gauge({
    name: 'tokenize_wiki_tokens_done',
    help: 'Tokens written by finished tasks',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly failedAttempts = new Gauge({
    name: 'tokenize_wiki_failed_attempts',
    help: 'Failed task attempts recorded over the run',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly docsRate = new Gauge({
    name: 'tokenize_wiki_throughput_docs_per_second',
    help: 'Docs per second over the recent window',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly tokensRate = new Gauge({
    name: 'tokenize_wiki_throughput_tokens_per_second',
    help: 'Tokens per second over the recent window',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly eta = new Gauge({
    name: 'tokenize_wiki_eta_seconds',
    help: 'Estimated seconds to finish (absent while unknown)',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly complete = new Gauge({
    name: 'tokenize_wiki_run_complete',
    help: '1 once the run is verified and _SUCCESS is written',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  // Lets the "no progress" alert tell a run paused on purpose from a stalled one.
  private readonly paused = new Gauge({
    name: 'tokenize_wiki_run_paused',
    help: '1 while the run file says paused: true (nothing new is submitted)',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly jobsInFlight = new Gauge({
    name: 'tokenize_wiki_jobs_in_flight',
    help: 'Jobs of the run in flight',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly jobDuration = new Histogram({
    name: 'tokenize_wiki_job_duration_seconds',
    help: 'Duration of finished jobs, by outcome',
    labelNames: ['run_id', 'outcome'],
    buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers: [this.counting],
  });
  private readonly jobsEnded = new Counter({
    name: 'tokenize_wiki_jobs_ended_total',
    help: 'Jobs seen ending, by outcome',
    labelNames: ['run_id', 'outcome'],
    registers: [this.counting],
  });
  private readonly jobsSubmitted = new Counter({
    name: 'tokenize_wiki_jobs_submitted_total',
    help: 'Jobs submitted',
    labelNames: ['run_id'],
    registers: [this.counting],
  });
  private readonly reconcileDuration = new Histogram({
    name: 'tokenize_wiki_reconcile_duration_seconds',
    help: 'Duration of reconcile ticks',
    labelNames: ['run_id'],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.counting],
  });
  private readonly reconciles = new Counter({
    name: 'tokenize_wiki_reconcile_total',
    help: 'Reconcile ticks by result (ok, failed, skipped: lease held elsewhere)',
    labelNames: ['run_id', 'result'],
    registers: [this.counting],
  });
  private readonly lastSuccess = new Gauge({
    name: 'tokenize_wiki_last_successful_reconcile_timestamp_seconds',
    help: 'Unix time of the last tick that succeeded',
    labelNames: ['run_id'],
    registers: [this.levels],
  });
  private readonly leaseHeld = new Gauge({
    name: 'tokenize_wiki_lease_held',
    help: '1 for the submitter that held the run lease at the last tick',
    labelNames: ['run_id', 'holder'],
    registers: [this.levels],
  });

  constructor(options: { processMetrics?: boolean; counters?: boolean } = {}) {
    this.registry = (options.counters ?? true) ? Registry.merge([this.levels, this.counting]) : this.levels;
    if (options.processMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: 'tokenize_wiki_submitter_' });
  }

  /** Record a tick: `report` when it ran (acted or not), `error` when it failed. */
  observeTick(runId: string, seconds: number, report: TickReport | undefined, error?: unknown): void {
    this.reconcileDuration.observe({ run_id: runId }, seconds);
    if (error !== undefined || !report) {
      this.reconciles.inc({ run_id: runId, result: 'failed' });
      return;
    }
    this.reconciles.inc({ run_id: runId, result: report.acted ? 'ok' : 'skipped' });
    this.lastSuccess.set({ run_id: runId }, Date.now() / 1000);
    this.leaseHeld.reset();
    if (report.lease.holder) this.leaseHeld.set({ run_id: runId, holder: report.lease.holder }, 1);
    if (!report.acted) return;
    this.jobsSubmitted.inc({ run_id: runId }, report.submitted.length);
    for (const event of report.events) {
      if (event.outcome === 'adopted') continue;
      this.jobsEnded.inc({ run_id: runId, outcome: event.outcome });
      if (event.duration_seconds !== undefined)
        this.jobDuration.observe({ run_id: runId, outcome: event.outcome }, event.duration_seconds);
    }
    if (report.progress) this.setProgress(report.progress);
  }

  setProgress(p: RunProgress): void {
    const run_id = p.run_id;
    for (const [state, value] of Object.entries(p.tasks)) this.tasks.set({ run_id, state }, value);
    this.docs.set({ run_id, state: 'total' }, p.docs.total);
    this.docs.set({ run_id, state: 'done' }, p.docs.done);
    this.tokens.set({ run_id }, p.tokens_done);
    this.failedAttempts.set({ run_id }, p.failed_attempts);
    this.docsRate.set({ run_id }, p.throughput.docs_per_second);
    this.tokensRate.set({ run_id }, p.throughput.tokens_per_second);
    if (p.eta_seconds === null) this.eta.remove({ run_id });
    else this.eta.set({ run_id }, p.eta_seconds);
    this.complete.set({ run_id }, p.complete ? 1 : 0);
    this.paused.set({ run_id }, p.paused ? 1 : 0);
    this.jobsInFlight.set({ run_id }, p.jobs_in_flight.length);
  }
}
