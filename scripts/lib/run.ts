// Steps, preflight checks and their logging. A step is a name, a state probe (check) and the
// commands that reach that state (apply); the runner skips steps whose check already holds.
import type { Host } from './host.js';
import { RefusalError, ScriptError } from './errors.js';

export interface ScriptIO {
  /** The machine the script acts on (a fake one in tests). */
  host: Host;
  /** Plan and report lines (stdout). */
  out: (line: string) => void;
  /** Log lines (stderr). */
  err: (line: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  repoRoot: string;
  /** Milliseconds, for step timing. */
  now: () => number;
}

export interface Step {
  name: string;
  /** One line saying what the step makes true. */
  goal: string;
  /** True when the host is already in the state this step produces. Must not change the host. */
  check(host: Host): Promise<boolean>;
  apply(host: Host): Promise<void>;
}

export type StepStatus = 'already-done' | 'applied' | 'planned';

export interface StepOutcome {
  name: string;
  status: StepStatus;
  ms: number;
}

export interface PreflightResult {
  ok: boolean;
  detail: string;
}

export interface PreflightCheck {
  name: string;
  run(host: Host): Promise<PreflightResult>;
}

export class Logger {
  constructor(
    private readonly script: string,
    private readonly io: Pick<ScriptIO, 'err' | 'now'>,
  ) {}

  info(message: string): void {
    this.io.err(`[${this.script}] ${message}`);
  }

  /** Runs fn and returns its result with the elapsed time. */
  async timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const t0 = this.io.now();
    const value = await fn();
    return { value, ms: this.io.now() - t0 };
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Runs the steps in order. In a dry run each missing step prints its commands (through the
 * DryRunHost) under a comment header; in a real run each applied step is checked again, so a
 * step whose commands "succeed" without reaching the state fails loudly.
 */
export async function runSteps(
  steps: readonly Step[],
  host: Host,
  log: Logger,
  plan: (line: string) => void,
): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const [i, step] of steps.entries()) {
    const label = `step ${i + 1}/${steps.length} ${step.name}`;
    const { value: status, ms } = await log.timed(async (): Promise<StepStatus> => {
      if (await step.check(host)) {
        if (host.dryRun) plan(`# ${label}: already done (${step.goal})`);
        return 'already-done';
      }
      if (host.dryRun) {
        plan(`# ${label}: ${step.goal}`);
        await step.apply(host);
        return 'planned';
      }
      log.info(`${label}: applying (${step.goal})`);
      await step.apply(host);
      if (!(await step.check(host))) {
        throw new ScriptError(`${label}: commands succeeded but the check still fails (${step.goal})`, 1);
      }
      return 'applied';
    });
    const verb = { 'already-done': 'already done, skipped', applied: 'applied', planned: 'would run' }[status];
    log.info(`${label}: ${verb} (${formatMs(ms)})`);
    outcomes.push({ name: step.name, status, ms });
  }
  return outcomes;
}

/**
 * Runs every check (so the user sees all problems at once). A real run refuses on any failure;
 * a dry run notes the failures in the plan and returns false so the script exits 1 after it.
 */
export async function runPreflight(
  checks: readonly PreflightCheck[],
  host: Host,
  log: Logger,
  plan: (line: string) => void,
): Promise<boolean> {
  const failures: string[] = [];
  for (const check of checks) {
    const { value: result, ms } = await log.timed(() => check.run(host));
    log.info(`preflight ${check.name}: ${result.ok ? 'ok' : 'FAILED'}, ${result.detail} (${formatMs(ms)})`);
    if (!result.ok) failures.push(`${check.name}: ${result.detail}`);
  }
  if (failures.length === 0) return true;
  if (host.dryRun) {
    for (const f of failures) plan(`# preflight FAILED (a real run would refuse): ${f}`);
    return false;
  }
  throw new RefusalError(`preflight failed, nothing was changed: ${failures.join('; ')}`);
}
