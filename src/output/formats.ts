/**
 * What a task writes. `jsonl`: one gzip JSONL shard of rows with their token ids (the brief's shard row).
 * `megatron`: the token ids as a Megatron-LM `IndexedDataset` (`.bin` + `.idx`) that a trainer memory-maps, and a
 * gzip JSONL of the rows without their ids (`.meta.jsonl.gz`), line i describing sequence i.
 */
export const OUTPUT_FORMATS = ['jsonl', 'megatron'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(value: string): value is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(value);
}
