// What the first `npm test` on a fresh machine says while it builds its servers: minutes of Go builds and pip installs
// that would otherwise look like a hang after vitest's RUN line. Used from the global setup, whose console output goes
// straight to the terminal (the test workers' output is collected by vitest and shown per test).

/** A one-time install into the cache: its name, where it lands, a rough duration, and how to check and make it. */
export interface Install {
  name: string;
  where: string;
  /** Rough wall time of a first build on a 2-core machine, e.g. "5-10 min". */
  estimate: string;
  /** Whether the cache already holds it (a cheap check: a stamp file). */
  cached(): Promise<boolean> | boolean;
  /** Builds it if missing (under the cache's lock); `log` gets the build's own step lines. */
  ensure(log: (line: string) => void): Promise<unknown>;
}

/** How often a build that is still running says so. */
export const HEARTBEAT_MS = 30_000;

export const minutesAndSeconds = (ms: number): string => {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
};

/**
 * Runs `install`, saying whether the cached copy is used or it is built now (once, with a rough duration), then a line
 * every HEARTBEAT_MS with the time so far, the build's own step lines, and the total at the end.
 */
export async function announce(
  install: Install,
  say: (line: string) => void = (line) => console.log(`[harness] ${line}`),
  heartbeatMs = HEARTBEAT_MS,
): Promise<void> {
  if (await install.cached()) {
    say(`${install.name}: using the cached copy in ${install.where}`);
    // A cheap check may be too hopeful (kubeInstall's); the build then says what it does.
    await install.ensure((line) => say(`${install.name}: ${line}`));
    return;
  }
  const started = Date.now();
  say(
    `${install.name}: building it into ${install.where}, once for this machine (later runs reuse it; about ` +
      `${install.estimate} on 2 cores, longer while another process holds its lock)`,
  );
  const timer = setInterval(
    () => say(`${install.name}: still building, ${minutesAndSeconds(Date.now() - started)} so far`),
    heartbeatMs,
  );
  try {
    await install.ensure((line) => say(`${install.name}: ${line}`));
  } finally {
    clearInterval(timer);
  }
  say(`${install.name}: ready after ${minutesAndSeconds(Date.now() - started)}`);
}
