const SAFE_WORD = /^[A-Za-z0-9_/.:=,@%+-]+$/;

/**
 * Quote one word for a POSIX shell; plain words stay as they are, so printed commands read naturally. Ray and
 * KubeRay run a job's entrypoint with `sh -c`-like semantics, and the bootstrap scripts print their plans this way.
 */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
