"""Read tokenize-wiki's megatron output with Megatron-LM's own reader and check it against Python tiktoken.

Usage: read_megatron.py SPEC, where SPEC is JSON:
  {"dump": "<legacy .json.gz dump>", "text_field": "text", "encoding": "cl100k_base", "append_eot": true,
   "dtype": "int32", "groups": {"<name>": [{"prefix": "<path without .bin/.idx>", "meta": "<.meta.jsonl.gz>"}, ...]}}
Every sequence of every dataset must equal tiktoken's encode_ordinary of its page's text (plus <|endoftext|> when
asked), the metadata line i must name the page of sequence i, and each page must appear once within a group (the
shards of a run, or the parts of one export). One process reads every group: importing torch takes most of the time.
Prints one line: RESULT {"<name>": {"datasets": n, "sequences": n, "tokens": n}, ...}.
"""
import gzip
import json
import sys

import numpy
import tiktoken
from megatron.core.datasets.indexed_dataset import IndexedDataset


def dump_texts(path, text_field):
    texts = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for _index_line in lines:
            doc = json.loads(next(lines))
            texts[doc["page_id"]] = doc.get(text_field)
    return texts


def read_group(spec, datasets, encoding, texts):
    eot = [encoding.eot_token] if spec["append_eot"] else []
    seen = set()
    sequences = tokens = 0
    for dataset in datasets:
        prefix = dataset["prefix"]
        data = IndexedDataset(prefix)
        with gzip.open(dataset["meta"], "rt", encoding="utf-8") as lines:
            meta = [json.loads(line) for line in lines]
        if data.index.dtype != getattr(numpy, spec["dtype"]):
            sys.exit(f"{prefix}: dtype {data.index.dtype}, expected {spec['dtype']}")
        if len(data) != len(meta):
            sys.exit(f"{prefix}: {len(data)} sequences, {len(meta)} metadata lines")
        if data.document_indices.tolist() != list(range(len(data) + 1)):
            sys.exit(f"{prefix}: a document is not one sequence")
        whole = data[0 : len(data)] if len(data) > 0 else []
        for i, row in enumerate(meta):
            page = row["page_id"]
            want = encoding.encode_ordinary(texts[page]) + eot
            if data[i].tolist() != want or whole[i].tolist() != want:
                sys.exit(f"{prefix}: sequence {i} (page {page}) differs from tiktoken's ids of its page")
            if page in seen:
                sys.exit(f"{prefix}: page {page} appears twice")
            seen.add(page)
            tokens += len(want)
        sequences += len(data)
    return {"datasets": len(datasets), "sequences": sequences, "tokens": tokens}


def main():
    spec = json.loads(sys.argv[1])
    encoding = tiktoken.get_encoding(spec["encoding"])
    texts = dump_texts(spec["dump"], spec["text_field"])
    results = {name: read_group(spec, datasets, encoding, texts) for name, datasets in spec["groups"].items()}
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
