import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname, totalmem } from 'node:os';

export interface MachineInfo {
  host: string;
  nproc: number;
  cpuModel: string;
  ramGiB: number;
  node: string;
  python: string;
  kernel: string;
}

export function describeMachine(): MachineInfo {
  let cpuModel = 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    // not Linux: leave unknown
  }
  return {
    host: hostname(),
    nproc: availableParallelism(),
    cpuModel,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    python: tryRun('python3', ['--version']),
    kernel: tryRun('uname', ['-sr']),
  };
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unavailable';
  }
}
