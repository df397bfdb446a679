/**
 * How the stores retry, one layer per transport: the HTTP store retries each request (p-retry), the S3 SDK each
 * command (its own backoff, `S3_MAX_ATTEMPTS`), and `resumableRead` resumes a transfer that broke after it started.
 * A resume opens the rest through the transport, so a request that keeps failing costs at most one layer's attempts.
 */
export const RETRY = {
  /** Attempts of one HTTP request, and resumes of one transfer. */
  attempts: 6,
  firstDelayMs: 200,
  maxDelayMs: 5_000,
} as const;

export const S3_MAX_ATTEMPTS = 5;

/** The wait before retry number `attempt` (1, 2, …): doubling from `firstDelayMs` up to `maxDelayMs`. */
export function retryDelay(attempt: number): number {
  return Math.min(RETRY.firstDelayMs * 2 ** (attempt - 1), RETRY.maxDelayMs);
}

/** Network trouble and server overload are worth retrying; 4xx answers and our own errors are not. */
export function isTransient(error: unknown): boolean {
  const e = error as {
    name?: string;
    code?: string;
    status?: number;
    $metadata?: { httpStatusCode?: number };
    message?: string;
  };
  const status = e.status ?? e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || status === 408;
  if (e.code && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|UND_ERR_\w+)$/.test(e.code)) return true;
  return /terminated|socket|closed|aborted|ECONNRESET|other side closed/i.test(e.message ?? '');
}
