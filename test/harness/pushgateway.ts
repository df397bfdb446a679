import { existsSync, mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { cacheRoot, harnessVersions } from './paths.js';
import { GiveUp, freePorts, isAlive, killOnExit, run, stopGroup, waitFor, withLock } from './proc.js';

const MODULE = 'github.com/prometheus/pushgateway';

/** Path to a `pushgateway` binary of the pinned release, built from its Go module on first use (~3 min). */
export async function ensurePushgateway(version: string = harnessVersions().pushgateway): Promise<string> {
  const dir = join(cacheRoot(), `pushgateway-${version}`);
  const bin = join(dir, 'pushgateway');
  if (existsSync(bin)) return bin;
  return withLock(`${dir}.lock`, 30 * 60_000, async () => {
    if (existsSync(bin)) return bin;
    mkdirSync(dir, { recursive: true });
    const gobin = join(dir, 'gobin');
    await run('go', ['install', `${MODULE}@${version}`], { env: { ...process.env, GOBIN: gobin } });
    renameSync(join(gobin, 'pushgateway'), bin);
    return bin;
  });
}

export interface PushgatewayServer {
  url: string;
  stop(): Promise<void>;
}

/** A real Pushgateway on a free loopback port, keeping its metrics in memory only. */
export async function startPushgateway(): Promise<PushgatewayServer> {
  const bin = await ensurePushgateway();
  const [port] = await freePorts(1);
  const scratch = mkdtempSync('/tmp/tw-pushgateway-');
  const child = spawn(bin, [`--web.listen-address=127.0.0.1:${port}`], {
    cwd: scratch,
    detached: true,
    stdio: 'ignore',
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${bin}`);
  child.unref();
  const forget = killOnExit(pid, scratch);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await stopGroup(pid, 2000);
    forget();
  };
  try {
    await waitFor('the Pushgateway to answer', 60_000, async () => {
      if (!isAlive(pid)) throw new GiveUp('pushgateway exited');
      return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}
