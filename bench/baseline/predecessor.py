"""The predecessor's design, rebuilt for comparison: one driver streams the dump, and every page is its
own Ray task that tokenizes it with tiktoken and writes one JSON file per page.

Run as a Ray job on the bench's local head:
  predecessor.py --dump FILE.json.gz --out DIR [--text-field text] [--encoding cl100k_base] [--window N]
Prints one JSON line: docs, tokens, wallS (driver start of streaming to last task done).
"""
import argparse
import gzip
import json
import os
import time

import ray


@ray.remote(num_cpus=1)
def tokenize_page(page_id: int, title: str, text: str, encoding: str, out_dir: str) -> int:
    import tiktoken  # imported in the task, as the prototype did; cached per worker process by Python

    ids = tiktoken.get_encoding(encoding).encode_ordinary(text)
    path = os.path.join(out_dir, f"{page_id}.json")
    with open(path, "w") as f:
        json.dump({"page_id": page_id, "title": title, "n_tokens": len(ids), "tokens": ids}, f)
    return len(ids)


def pages(dump: str, text_field: str):
    """Index line + doc line pairs of a CirrusSearch dump, streamed by the single driver."""
    with gzip.open(dump, "rt", encoding="utf-8") as f:
        index_line = None
        for line in f:
            if index_line is None:
                index_line = json.loads(line)
                continue
            doc = json.loads(line)
            page_id = doc.get("page_id") or int(index_line["index"]["_id"])
            index_line = None
            # Redirects carry no article text of their own; ours skips them, so the comparison skips them here too.
            if doc.get("page_type") == "redirect":
                continue
            text = doc.get(text_field)
            if isinstance(text, str) and text:
                yield page_id, doc.get("title", ""), text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--encoding", default="cl100k_base")
    # The driver keeps a bounded number of tasks in flight so it cannot exhaust the object store.
    ap.add_argument("--window", type=int, default=256)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ray.init(address="auto")
    start = time.perf_counter()
    in_flight, docs, tokens = [], 0, 0
    for page_id, title, text in pages(args.dump, args.text_field):
        in_flight.append(tokenize_page.remote(page_id, title, text, args.encoding, args.out))
        docs += 1
        if len(in_flight) >= args.window:
            done, in_flight = ray.wait(in_flight, num_returns=len(in_flight) // 2)
            tokens += sum(ray.get(done))
    tokens += sum(ray.get(in_flight))
    wall = time.perf_counter() - start
    # Flushed, then Ray shut down by us: left to interpreter exit, a Ray thread starting during shutdown raised
    # "can't register atexit after shutdown" and the unflushed result line was lost (a bench --quick failure in CI).
    print(json.dumps({"docs": docs, "tokens": tokens, "wallS": wall}), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
