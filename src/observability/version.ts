import { readFileSync } from 'node:fs';

/** The package version, recorded in markers so a shard can be traced to the program that wrote it. */
export const programVersion: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
