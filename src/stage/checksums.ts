import { InputError, UsageError } from '../errors/index.js';
import { baseName, readText } from '../storage/index.js';

const HEX = /^[0-9a-fA-F]{64}$/;

/** `--sha256 HEX`: 64 hex digits, normalised to lower case. */
export function parseSha256(value: string, what = '--sha256'): string {
  if (!HEX.test(value)) throw new UsageError(`${what}: expected 64 hex digits, got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

/**
 * A checksum list as `sha256sum` writes it: `HEX  name` or `HEX *name` per line; blank lines and `#` comments are
 * skipped. Names are matched by their last path segment. Returns name → lower-case hex.
 */
export function parseSha256List(text: string, source: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!match)
      throw new InputError(`${source}:${index + 1}: expected "HEX  name" (64 hex digits, two spaces, a file name)`);
    const hex = (match[1] as string).toLowerCase();
    const name = baseName(match[2] as string);
    const seen = out.get(name);
    if (seen !== undefined && seen !== hex)
      throw new InputError(`${source}:${index + 1}: ${name} is listed twice with different sha256`);
    out.set(name, hex);
  });
  return out;
}

export async function readSha256List(uri: string): Promise<Map<string, string>> {
  return parseSha256List(await readText(uri), uri);
}
