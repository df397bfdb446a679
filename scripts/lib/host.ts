// The command-runner seam. Every script talks to the machine only through a Host, so a dry run
// (DryRunHost) and the tests (a fake host) see exactly the commands a real run would execute.
import { promises as fs } from 'node:fs';
import { $ } from 'zx';
import { shellQuote } from '../../src/util/index.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Text fed to the command's stdin (printed as a here-document). */
  input?: string;
  /** Write the command's stdout to this file (printed as `> file`). */
  stdoutFile?: string;
  /** Mode of stdoutFile; it is created with this mode before anything is written to it. */
  mode?: number;
  /** Extra environment (printed as `NAME=value` before the command). */
  env?: Record<string, string>;
}

export interface Host {
  readonly dryRun: boolean;
  /** Effective uid of the process that would change the host. */
  uid(): number;
  /** Read-only query. Runs in dry runs too; never throws on a non-zero exit. */
  probe(argv: readonly string[]): Promise<CommandResult>;
  /** File contents, or undefined if the file is missing or unreadable. Read-only. */
  readFile(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  /** Changes the host. Throws CommandError on a non-zero exit. */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<CommandResult>;
  writeFile(path: string, content: string, mode?: number): Promise<void>;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: CommandResult,
  ) {
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
    super(`command failed (exit ${result.exitCode}): ${command}${tail ? `\n${tail}` : ''}`);
  }
}

/** The exact shell line equivalent to exec(argv, opts), without the here-document body. */
export function formatCommand(argv: readonly string[], opts: ExecOptions = {}): string {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  let line = [...env, ...argv.map(shellQuote)].join(' ');
  if (opts.stdoutFile) line += ` > ${shellQuote(opts.stdoutFile)}`;
  if (opts.input !== undefined) line += ` <<'EOF'`;
  return line;
}

/** Shell lines (one string per line) that do what exec/writeFile would do. */
export function planLines(argv: readonly string[], opts: ExecOptions = {}): string[] {
  const lines: string[] = [];
  if (opts.stdoutFile && opts.mode !== undefined) {
    lines.push(`install -m ${modeString(opts.mode)} /dev/null ${shellQuote(opts.stdoutFile)}`);
  }
  lines.push(formatCommand(argv, opts));
  if (opts.input !== undefined) lines.push(...hereDoc(opts.input));
  return lines;
}

/** A file write as shell lines: `cat > path` with the content as a here-document. */
export function writeFilePlan(path: string, content: string, mode?: number): string[] {
  return planLines(['cat'], { input: content, stdoutFile: path, ...(mode === undefined ? {} : { mode }) });
}

function hereDoc(text: string): string[] {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  return [...body.split('\n'), 'EOF'];
}

export function modeString(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** The real host: zx `$` with each argv element quoted, output streamed to stderr for long steps. */
export class ZxHost implements Host {
  readonly dryRun = false;

  uid(): number {
    return process.getuid?.() ?? -1;
  }

  async probe(argv: readonly string[]): Promise<CommandResult> {
    const out = await $({ quiet: true, nothrow: true, timeout: '60s' })`${argv}`;
    return { exitCode: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr };
  }

  async readFile(path: string): Promise<string | undefined> {
    try {
      return await fs.readFile(path, 'utf8');
    } catch {
      return undefined;
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await fs.access(path);
      return true;
    } catch {
      return false;
    }
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<CommandResult> {
    const proc = $({
      quiet: true,
      nothrow: true,
      env: { ...process.env, ...opts.env },
      ...(opts.input === undefined ? {} : { input: opts.input }),
    })`${argv}`;
    // Long commands (apt-get, kubeadm) stay visible; stdout that goes to a file is not echoed.
    if (!opts.stdoutFile) proc.stdout.pipe(process.stderr, { end: false });
    proc.stderr.pipe(process.stderr, { end: false });
    const out = await proc;
    const result = { exitCode: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr };
    if (result.exitCode !== 0) throw new CommandError(formatCommand(argv, opts), result);
    if (opts.stdoutFile) await this.writeFile(opts.stdoutFile, result.stdout, opts.mode);
    return result;
  }

  async writeFile(path: string, content: string, mode = 0o644): Promise<void> {
    await fs.writeFile(path, content, { mode });
    await fs.chmod(path, mode); // writeFile's mode only applies when it creates the file
  }
}

/**
 * Dry run: probes and reads go to the wrapped host (they change nothing); every change is
 * printed as a shell line instead. `echoProbes` also prints the probes (for read-only scripts).
 */
export class DryRunHost implements Host {
  readonly dryRun = true;

  constructor(
    private readonly inner: Host,
    private readonly print: (line: string) => void,
    private readonly echoProbes = false,
  ) {}

  uid(): number {
    return this.inner.uid();
  }

  probe(argv: readonly string[]): Promise<CommandResult> {
    if (this.echoProbes) this.print(formatCommand(argv));
    return this.inner.probe(argv);
  }

  readFile(path: string): Promise<string | undefined> {
    return this.inner.readFile(path);
  }

  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<CommandResult> {
    for (const line of planLines(argv, opts)) this.print(line);
    // Later commands may need this output (e.g. a join command); the plan shows where it goes.
    return { exitCode: 0, stdout: `<output of ${argv.join(' ')}>`, stderr: '' };
  }

  async writeFile(path: string, content: string, mode?: number): Promise<void> {
    for (const line of writeFilePlan(path, content, mode)) this.print(line);
  }
}

export { shellQuote };
