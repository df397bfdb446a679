/** Default lifecycle of a run's output prefix (kept apart from lifecycle.ts so CLI flags need no S3 SDK to load). */
export const DEFAULT_STATE_DAYS = 30;
export const DEFAULT_MULTIPART_DAYS = 7;
