/**
 * The rows of a shard (the brief's shard row) and of megatron metadata: written by the tokenizer's batches, read back
 * by verification. Every row begins with `{"page_id":<id>,` so a reader finds the page without parsing the row; the
 * tokenizer writes the ids itself (as digits, straight into bytes), between `shardRowHead` and `SHARD_ROW_END`.
 */
export interface RowFields {
  page_id: number;
  title: string;
  namespace: number;
  wiki: string;
  revision: number | null;
}

/** A jsonl row up to its ids: `…,"n_tokens":<n>,"tokens":[`. */
export function shardRowHead(doc: RowFields, nTokens: number): string {
  return (
    `{"page_id":${doc.page_id},"title":${JSON.stringify(doc.title)},"namespace":${doc.namespace},` +
    `"wiki":${JSON.stringify(doc.wiki)},"revision":${doc.revision},"n_tokens":${nTokens},"tokens":[`
  );
}

export const SHARD_ROW_END = ']}\n';

/** A megatron metadata row: line i describes sequence i of the `.bin` file. */
export function metaRow(doc: RowFields): string {
  return `{"page_id":${doc.page_id},"title":${JSON.stringify(doc.title)},"revision":${doc.revision},"wiki":${JSON.stringify(doc.wiki)}}\n`;
}

/** The page id a row begins with; undefined when the line is not a row. */
export function pageIdOfRow(line: string): number | undefined {
  const match = /^\{"page_id":(\d+),/.exec(line);
  return match ? Number(match[1]) : undefined;
}
