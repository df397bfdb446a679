// Runs the CLI as a child process (as a Job or a person would), with a given S3 environment.
import { spawn } from 'node:child_process';
import { repoRoot } from '../harness/paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const ENTRY = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })";

export function tokenizeWiki(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // Only the given S3 settings: nothing from the developer's own AWS profile may leak in.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))) as Record<string, string>;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, ...args], {
      cwd: repoRoot,
      env: { ...base, ...env, AWS_MAX_ATTEMPTS: '1', NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}
