import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { announce, minutesAndSeconds, type Install } from './announce.js';

function fakeInstall(cached: boolean, buildMs: number): Install & { builds: number } {
  const install = {
    name: 'Thing 1.0',
    where: '/cache/thing-1.0',
    estimate: '5-10 min',
    builds: 0,
    cached: () => cached,
    ensure: async (log: (line: string) => void) => {
      if (cached) return;
      install.builds++;
      log('step one');
      await sleep(buildMs);
    },
  };
  return install;
}

describe('announced installs', () => {
  it('says the cached copy is used', async () => {
    const lines: string[] = [];
    await announce(fakeInstall(true, 0), (line) => lines.push(line));
    expect(lines).toEqual(['Thing 1.0: using the cached copy in /cache/thing-1.0']);
  });

  it('says what is built, that it happens once, how long it takes, and keeps saying it is still building', async () => {
    const lines: string[] = [];
    const install = fakeInstall(false, 120);
    await announce(install, (line) => lines.push(line), 50);
    expect(install.builds).toBe(1);
    expect(lines[0]).toBe(
      'Thing 1.0: building it into /cache/thing-1.0, once for this machine (later runs reuse it; about 5-10 min on 2 cores, longer while another process holds its lock)',
    );
    expect(lines[1]).toBe('Thing 1.0: step one');
    expect(
      lines.filter((line) => /^Thing 1\.0: still building, \d+ s so far$/.test(line)).length,
    ).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)).toMatch(/^Thing 1\.0: ready after \d+ s$/);
  });

  it('writes durations as a person reads them', () => {
    expect(minutesAndSeconds(4_400)).toBe('4 s');
    expect(minutesAndSeconds(754_000)).toBe('12 min 34 s');
  });
});
