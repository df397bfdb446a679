import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError, DryRunHost, formatCommand, planLines, shellQuote, ZxHost } from '../../scripts/lib/host.js';

describe('plan formatting', () => {
  it('quotes only words a shell would change', () => {
    expect(shellQuote('--kubeconfig=/etc/kubernetes/admin.conf')).toBe('--kubeconfig=/etc/kubernetes/admin.conf');
    expect(shellQuote('kubelet=1.36.3-*')).toBe("'kubelet=1.36.3-*'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
  });

  it('prints env, redirections and here-documents as a shell would run them', () => {
    expect(formatCommand(['apt-get', 'update'], { env: { DEBIAN_FRONTEND: 'noninteractive' } })).toBe(
      'DEBIAN_FRONTEND=noninteractive apt-get update',
    );
    expect(planLines(['kubeadm', 'token', 'create'], { stdoutFile: '/etc/x', mode: 0o600 })).toEqual([
      'install -m 0600 /dev/null /etc/x',
      'kubeadm token create > /etc/x',
    ]);
    expect(planLines(['cat'], { input: 'a\nb\n', stdoutFile: '/etc/y' })).toEqual([
      "cat > /etc/y <<'EOF'",
      'a',
      'b',
      'EOF',
    ]);
  });

  it('a dry run prints changes, still answers probes, and changes nothing', async () => {
    const printed: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'tw-dry-'));
    const host = new DryRunHost(new ZxHost(), (l) => printed.push(l));
    await host.exec(['touch', join(dir, 'a')]);
    await host.writeFile(join(dir, 'b'), 'x\n', 0o600);
    expect(await host.exists(join(dir, 'a'))).toBe(false);
    expect((await host.probe(['echo', 'hi'])).stdout).toBe('hi\n');
    expect(printed).toEqual([
      `touch ${dir}/a`,
      `install -m 0600 /dev/null ${dir}/b`,
      `cat > ${dir}/b <<'EOF'`,
      'x',
      'EOF',
    ]);
  });
});

describe('ZxHost (the real runner, on local files only)', () => {
  const host = new ZxHost();

  it('passes each argv element as one argument, whatever it contains', async () => {
    const r = await host.probe(['printf', '%s|', 'a b', "it's", '$HOME', '*']);
    expect(r).toMatchObject({ exitCode: 0, stdout: "a b|it's|$HOME|*|" });
  });

  it('probes report failures instead of throwing; exec throws a CommandError naming the command', async () => {
    expect((await host.probe(['false'])).exitCode).toBe(1);
    await expect(host.exec(['ls', '/nonexistent-tw'])).rejects.toBeInstanceOf(CommandError);
    await expect(host.exec(['ls', '/nonexistent-tw'])).rejects.toThrow(
      /^command failed \(exit 2\): ls \/nonexistent-tw\n.*No such file/,
    );
  });

  it('writes stdout and files with the requested mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-host-'));
    await host.exec(['echo', 'kubeadm join x'], { stdoutFile: join(dir, 'join'), mode: 0o600 });
    expect(readFileSync(join(dir, 'join'), 'utf8')).toBe('kubeadm join x\n');
    expect(statSync(join(dir, 'join')).mode & 0o777).toBe(0o600);
    await host.writeFile(join(dir, 'conf'), 'a = 1\n');
    expect(statSync(join(dir, 'conf')).mode & 0o777).toBe(0o644);
    expect(await host.readFile(join(dir, 'missing'))).toBeUndefined();
  });
});
