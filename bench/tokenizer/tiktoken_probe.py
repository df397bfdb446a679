"""Tokenizer probe for Python tiktoken (encode_ordinary), the tool a user would otherwise reach for.

Usage: tiktoken_probe.py CORPUS.jsonl ENCODING
Prints one JSON line with the same fields as bench/tokenizer/js-probe.ts, and an identical digest
when the ids are identical.
"""
import hashlib
import json
import sys
import time
from array import array

import tiktoken


def main() -> None:
    corpus_path, encoding = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "cl100k_base"
    with open(corpus_path, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    enc = tiktoken.get_encoding(encoding)
    for t in texts[:50]:
        enc.encode_ordinary(t)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = [enc.encode_ordinary(t) for t in texts]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    h = hashlib.sha256()
    sep = b"\xff\xff\xff\xff"
    tokens = 0
    for ids in out:
        tokens += len(ids)
        # array('i') is native-endian int32, as the JS probe's Int32Array on the same machine.
        h.update(array("i", ids).tobytes())
        h.update(sep)
    size = sum(len(t.encode("utf-8")) for t in texts)
    print(json.dumps({"lib": "python-tiktoken", "source": f"tiktoken {tiktoken.__version__} (PyPI) encode_ordinary",
                      "docs": len(texts), "bytes": size, "tokens": tokens,
                      "wallS": wall, "cpuS": cpu, "digest": h.hexdigest()}))


if __name__ == "__main__":
    main()
