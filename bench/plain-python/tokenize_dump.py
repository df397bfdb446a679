"""The script a user would write instead of tokenize-wiki: stream a CirrusSearch `.json.gz` dump, tokenize every page
with tiktoken on a multiprocessing.Pool over all cores, and write one gzip JSONL file of rows with our shard row's
fields (`json.dumps` as is).

  tokenize_dump.py --dump FILE.json.gz --out FILE.jsonl.gz [--processes N] [--text-field text] [--encoding cl100k_base]

Workers get the raw document lines and parse, tokenize and serialise them, so the parent only reads, decompresses,
compresses and writes: the fastest shape such a script takes without leaving the standard library. gzip level 1, as
our shards, so neither side is charged for a slower compression level. Skips what `run` skips (redirects, pages
without text). Prints one JSON line: docs, rows, tokens.
"""
import argparse
import gzip
import json
import multiprocessing
import os

import tiktoken

_encoding = None
_text_field = "text"


def _init(encoding: str, text_field: str) -> None:
    global _encoding, _text_field
    _encoding = tiktoken.get_encoding(encoding)
    _text_field = text_field


def _row(pair):
    """One index line + document line: a row (or None for a page without text) and its token count."""
    index_line, doc_line = pair
    doc = json.loads(doc_line)
    text = doc.get(_text_field)
    if doc.get("page_type") == "redirect" or not isinstance(text, str) or not text:
        return None, 0
    page_id = doc.get("page_id")
    if page_id is None:
        page_id = int(json.loads(index_line)["index"]["_id"])
    ids = _encoding.encode_ordinary(text)
    row = {
        "page_id": page_id,
        "title": doc.get("title", ""),
        "namespace": doc.get("namespace", 0),
        "wiki": doc.get("wiki", ""),
        "revision": doc.get("version"),
        "n_tokens": len(ids),
        "tokens": ids,
    }
    return json.dumps(row) + "\n", len(ids)


def _pairs(dump: str):
    with gzip.open(dump, "rb") as f:
        for index_line in f:
            yield index_line, next(f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--processes", type=int, default=os.cpu_count())
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--encoding", default="cl100k_base")
    args = ap.parse_args()
    docs = rows = tokens = 0
    with multiprocessing.Pool(args.processes, _init, (args.encoding, args.text_field)) as pool, gzip.open(
        args.out, "wt", compresslevel=1
    ) as out:
        for row, n in pool.imap(_row, _pairs(args.dump), chunksize=64):
            docs += 1
            if row is not None:
                out.write(row)
                rows += 1
                tokens += n
    print(json.dumps({"docs": docs, "rows": rows, "tokens": tokens}))


if __name__ == "__main__":
    main()
