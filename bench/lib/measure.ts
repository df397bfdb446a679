import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { benchCacheDir, benchDir, repoRoot } from './paths.js';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One measured execution. cpuS is user + system CPU of the whole process (all threads). */
export interface ProcessUsage {
  wallS: number;
  cpuS: number;
  maxRssKb: number;
}

interface RawUsage {
  exitCode: number;
  wallS: number;
  userS: number;
  sysS: number;
  maxRssKb: number;
}

export interface RunOptions {
  /** Where the child's stdout goes; default /dev/null (decoders write their output there). */
  stdoutPath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

let runCounter = 0;

/** Run a command to completion under bench/lib/rusage.py and return its wall time, CPU time and peak RSS. */
export async function runMeasured(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ProcessUsage> {
  const resultPath = join(benchCacheDir('tmp'), `rusage-${process.pid}-${runCounter++}.json`);
  const output = await spawnCapture(
    'python3',
    [join(benchDir, 'lib', 'rusage.py'), resultPath, opts.stdoutPath ?? '/dev/null', cmd, ...args],
    opts,
  );
  const raw = JSON.parse(await readFile(resultPath, 'utf8')) as RawUsage;
  await rm(resultPath, { force: true });
  if (raw.exitCode !== 0) {
    // The measured command's stderr passes through rusage.py's: that is where its error message is.
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${raw.exitCode}: ${lastLines(output.stderr || output.stdout)}`,
    );
  }
  return { wallS: raw.wallS, cpuS: raw.userS + raw.sysS, maxRssKb: raw.maxRssKb };
}

/** Run a command, fail with its stderr tail on a non-zero exit, and return stdout. */
export async function spawnCollect(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return (await spawnCapture(cmd, args, opts)).stdout;
}

/** Run a command, fail with its stderr tail on a non-zero exit, and return stdout and stderr. */
function spawnCapture(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? repoRoot,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise({ stdout: out, stderr: err });
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${lastLines(err || out)}`));
    });
  });
}

/**
 * Run a bench probe script (TypeScript, via tsx) that prints one JSON object as its last stdout line.
 * Probes time their own hot loop, so Node start-up and module loading are not charged to the code under test.
 */
export async function runProbe<T>(script: string, args: readonly string[], opts: RunOptions = {}): Promise<T> {
  const out = await spawnCollect(process.execPath, ['--import', 'tsx', join(benchDir, script), ...args], opts);
  const last = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`probe ${script} printed no JSON result: ${lastLines(out)}`);
  }
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** Measure a synchronous hot loop in this process: wall time and process CPU time (all threads). */
export function timeSync<T>(fn: () => T): { value: T; wallS: number; cpuS: number } {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { value, wallS, cpuS: (cpu.user + cpu.system) / 1e6 };
}

let clockTicks: number | undefined;

/**
 * CPU seconds of this process's terminated, reaped child processes (Linux /proc/self/stat cutime + cstime).
 * Node has no RUSAGE_CHILDREN call, and a reader that pipes through a decoder process spends its CPU there.
 */
function childrenCpuS(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after "pid (comm) " start at field 3; cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[16 - 3]) + Number(fields[17 - 3])) / clockTicks;
}

/** Measure an async piece of work in this process: wall time, and CPU time of all threads plus reaped children. */
export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ value: T; wallS: number; cpuS: number }> {
  const cpu0 = process.cpuUsage();
  const children0 = childrenCpuS();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { value, wallS, cpuS: (cpu.user + cpu.system) / 1e6 + childrenCpuS() - children0 };
}
