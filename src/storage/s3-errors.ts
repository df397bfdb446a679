/**
 * The one place that reads S3 SDK errors: what went wrong, in words a person can act on. The store turns these into
 * errors naming the URI (`s3.ts`); `buckets ensure` and `lifecycle apply` show the short reason in their reports.
 */
export type S3Problem =
  | 'credentials'
  | 'unknown-key'
  | 'wrong-secret'
  | 'access-denied'
  | 'no-bucket'
  | 'unsupported'
  | 'unreachable'
  | 'timeout';

interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function s3ErrorName(error: unknown): string | undefined {
  return (error as SdkError | undefined)?.name;
}

export function s3ErrorStatus(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The kind of a failure that the setup, not the request, has to fix; undefined for anything else. */
export function s3Problem(error: unknown): S3Problem | undefined {
  const name = s3ErrorName(error);
  const message = (error as SdkError | undefined)?.message ?? '';
  const status = s3ErrorStatus(error);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) return 'credentials';
  if (name === 'InvalidAccessKeyId') return 'unknown-key';
  if (name === 'SignatureDoesNotMatch') return 'wrong-secret';
  if (name === 'AccessDenied' || status === 403) return 'access-denied';
  if (name === 'NoSuchBucket') return 'no-bucket';
  if (name === 'NotImplemented' || status === 501) return 'unsupported';
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(message)) return 'unreachable';
  if (/ETIMEDOUT/.test(message)) return 'timeout';
  return undefined;
}

/** A short reason a person can act on, from an SDK error; `fallback` says what failed when the error is unknown. */
export function s3Reason(error: unknown, fallback: string): string {
  const name = s3ErrorName(error);
  const message = (error as SdkError | undefined)?.message ?? '';
  switch (s3Problem(error)) {
    case 'credentials':
      return 'no credentials (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or a web identity)';
    case 'unknown-key':
      return 'unknown access key id (InvalidAccessKeyId)';
    case 'wrong-secret':
      return 'wrong secret key (SignatureDoesNotMatch)';
    case 'access-denied':
      return `access denied (${name ?? '403'})`;
    case 'no-bucket':
      return 'no such bucket';
    case 'unsupported':
      return 'not supported by this store (NotImplemented)';
    case 'unreachable':
    case 'timeout':
      return `endpoint unreachable (${message})`;
    case undefined:
      return `${fallback}: ${name && name !== 'Error' ? `${name}: ` : ''}${message || String(error)}`;
  }
}
