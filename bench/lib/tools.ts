import { execFileSync } from 'node:child_process';

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function apt(args: string[]): boolean {
  const asRoot = process.getuid?.() === 0;
  const [cmd, full] = asRoot ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]];
  try {
    execFileSync(cmd, full, { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return true;
  } catch {
    return false;
  }
}

/**
 * Make a command-line tool available, installing its Debian package when missing (the bench compares against
 * these tools; tests never need them). Returns a skip reason, or null when the tool is ready.
 */
export function ensureTool(cmd: string, debianPackage: string): string | null {
  if (onPath(cmd)) return null;
  if (!onPath('apt-get')) return `${cmd} not installed and apt-get is not available`;
  if (!apt(['install', '-y', '-q', debianPackage])) {
    apt(['update', '-q']);
    apt(['install', '-y', '-q', debianPackage]);
  }
  return onPath(cmd)
    ? null
    : `${cmd} not installed and 'apt-get install ${debianPackage}' failed (needs root or passwordless sudo)`;
}
