import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export { isAlive, withLock } from '../../scripts/lib/lock.js';

/** Ports the kernel reports free on 127.0.0.1; all are held open together so they are distinct. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address for a probe socket');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin (default: none). */
  input?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (callers decide). */
export function exec(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (error) => reject(new Error(`${cmd}: ${error.message}`)));
    child.once('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    // A command may exit before reading all its input (kubectl on a validation error): its exit
    // code and stderr tell what happened, the broken pipe adds nothing.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a command to completion and returns its stdout; on failure the error carries the command and its output's tail. */
export async function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await exec(cmd, args, options);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}:\n${(r.stderr || r.stdout).slice(-4000)}`);
  return r.stdout;
}

/** Thrown inside a `waitFor` check to stop waiting at once (e.g. the server process is gone). */
export class GiveUp extends Error {}

/** The same error with more context, keeping its GiveUp-ness. */
export function withContext(err: unknown, context: string): Error {
  const message = `${err instanceof Error ? err.message : String(err)}\n${context}`;
  return err instanceof GiveUp ? new GiveUp(message) : new Error(message);
}

/**
 * Starts a server on freshly chosen ports, again (up to `attempts` times) if it dies while starting: a port
 * probed free can be taken by another process before the server binds it.
 */
export async function startWithRetry<T>(attempts: number, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof GiveUp) || attempt >= attempts) throw err;
    }
  }
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(250);
  }
}

/** Signals a whole process group (children spawned with `detached: true` lead their own group). */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM a process group, then SIGKILL whatever is left after `graceMs`. */
export async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  signalGroup(pgid, 'SIGKILL');
  while (groupAlive(pgid)) await sleep(50);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const groupsToKill = new Map<number, string>();
let hooksInstalled = false;

/** SIGKILLs every registered server group and removes its scratch folder; synchronous, so safe in any hook. */
function killRegistered(): void {
  for (const [pgid, dir] of groupsToKill) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
  groupsToKill.clear();
}

/**
 * Last-resort cleanup: servers lead their own process groups, so neither Ctrl-C on the terminal nor the death of
 * this process reaches them. On exit, SIGINT, SIGTERM or SIGHUP (which would otherwise kill Node without an 'exit'
 * event) every registered group is killed and its scratch folder removed. Returns "forget this group".
 */
export function killOnExit(pgid: number, scratchDir: string): () => void {
  groupsToKill.set(pgid, scratchDir);
  if (!hooksInstalled) {
    hooksInstalled = true;
    // Prepended: vitest's own handlers call process.exit() again from inside 'exit', which skips later listeners.
    process.prependOnceListener('exit', killRegistered);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.prependOnceListener(signal, () => {
        killRegistered();
        // With no other listener left, Node would not exit by itself now that one was registered.
        if (process.listenerCount(signal) === 0) process.exit(128 + osConstants.signals[signal]);
      });
    }
  }
  return () => groupsToKill.delete(pgid);
}
