/** A document the dump holds but that cannot be read (malformed JSON, no page id): counted, never fatal alone. */
export class BadDocError extends Error {}
