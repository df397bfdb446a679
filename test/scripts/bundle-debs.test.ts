// The Debian part of the bundle: what apt is told (a throwaway state, Debian 12 sources, downloads into debs/).
import { describe, expect, it } from 'vitest';
import { DryRunHost } from '../../scripts/lib/host.js';
import { aptOptions, debsStamp, debsStep, NODE_DEBS, sourcesList } from '../../scripts/lib/bundle/debs.js';
import { FakeHost } from './fake-host.js';

describe('bundle debs step', () => {
  const opts = { bundle: '/cache/bundle/1.36.3', work: '/cache/bundle/work', arch: 'amd64' };

  it('plans an apt download against its own state and an empty dpkg status, into debs/', async () => {
    const plan: string[] = [];
    const host = new DryRunHost(new FakeHost(), (l) => plan.push(l));
    const step = debsStep(opts);
    expect(await step.check(host)).toBe(false);
    await step.apply(host);
    const text = plan.join('\n');
    expect(text).toContain(
      `apt-get ${aptOptions('/cache/bundle/work/apt', '/cache/bundle/1.36.3/debs', 'amd64').join(' ')} update -q`,
    );
    expect(text).toContain(`install -q -y --download-only --no-install-recommends ${NODE_DEBS.join(' ')}`);
    expect(text).toContain("cat > /cache/bundle/work/apt/status <<'EOF'");
    expect(text).toContain('-o Dir::State::status=/cache/bundle/work/apt/status');
    expect(text).toContain('-o Dir::Cache::archives=/cache/bundle/1.36.3/debs');
    // The host's own sources and pins play no part.
    expect(text).toContain('-o Dir::Etc::SourceParts=/cache/bundle/work/apt/sources.list.d');
    expect(text).toContain('-o Dir::Etc::PreferencesParts=/cache/bundle/work/apt/preferences.d');
  });

  it('is done when the stamp names the same packages', async () => {
    const host = new FakeHost();
    host.files.set('/cache/bundle/1.36.3/debs/.packages', debsStamp('amd64'));
    expect(await debsStep(opts).check(host)).toBe(true);
    host.files.set('/cache/bundle/1.36.3/debs/.packages', 'bookworm amd64: runc\n');
    expect(await debsStep(opts).check(host)).toBe(false);
  });

  it('uses Debian 12 with its updates and security archives, signed by the Debian keyring', () => {
    expect(sourcesList().split('\n').filter(Boolean)).toEqual([
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main',
    ]);
  });
});
