"""The browser's local search: building the index of a folder, and answering a query, beside a plain scan.

Writes `--documents` synthetic Markdown documents (deterministic: made-up words drawn by Zipf's law, as in
real text; a title and a few paragraphs each) into a temporary folder, indexes them with `LocalSearch`, then times
`--queries` three-word queries. The baseline is what a search costs without an index: reading every
document's text (already in memory) and ranking those that hold a query word by how many they hold. It also
times a refresh that finds nothing changed (one walk of the folder), and one after 1% of the files changed.

    python benchmarks/browser.py [--documents 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

_SYLLABLES = ("al", "bor", "cel", "dun", "ek", "fal", "gor", "hen", "is", "jor", "kel", "lum", "mar", "nor", "os")
#: 3,375 made-up words, drawn by Zipf's law as words of real text are (the first far more often than the last).
_VOCABULARY = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES]
_WEIGHTS = [1 / rank for rank in range(1, len(_VOCABULARY) + 1)]


#: Queries the plain scan is timed on.
_SCANNED_QUERIES = 20


def _document(rng: random.Random) -> tuple[str, str]:
    title = " ".join(rng.choices(_VOCABULARY, _WEIGHTS, k=4)).title()
    paragraphs = [
        " ".join(rng.choices(_VOCABULARY, _WEIGHTS, k=rng.randint(30, 80))) + "." for _ in range(rng.randint(2, 6))
    ]
    return title, "\n\n".join(paragraphs)


def _milliseconds(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Measure and print; returns the figures (seconds for the index, milliseconds for the rest)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)

    from gptoss_hub.tools.browser.local import LocalSearch

    rng = random.Random(20251204)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "docs"
        folder.mkdir()
        texts = []
        for number in range(args.documents):
            title, body = _document(rng)
            (folder / f"doc{number:05d}.md").write_text(f"# {title}\n\n{body}\n")
            texts.append((title, body.lower()))
        started = time.perf_counter()
        local = LocalSearch(folder, index=Path(scratch) / "index.sqlite", refresh_every=float("inf"))
        build = time.perf_counter() - started
        queries = [" ".join(rng.choices(_VOCABULARY, _WEIGHTS, k=3)) for _ in range(args.queries)]

        indexed = []
        for query in queries:
            began = time.perf_counter()
            local.search(query, 10)
            indexed.append(time.perf_counter() - began)

        scanned = []
        for query in queries[:_SCANNED_QUERIES]:  # a scan is slow: a few queries give its median
            began = time.perf_counter()
            words = query.split()
            hits = [(sum(len(re.findall(rf"\b{w}\b", body)) for w in words), title) for title, body in texts]
            sorted((hit for hit in hits if hit[0]), reverse=True)[:10]
            scanned.append(time.perf_counter() - began)

        unchanged = local.refresh().seconds
        for number in range(0, args.documents, 100):
            path = folder / f"doc{number:05d}.md"
            path.write_text(path.read_text() + "\nedited\n")
        changed = local.refresh()
        local.close()

    query_median, query_p95 = _milliseconds(indexed)
    scan_median, _ = _milliseconds(scanned)
    results = {
        "index build s": build,
        "query median ms": query_median,
        "query p95 ms": query_p95,
        "scan median ms": scan_median,
        "refresh unchanged ms": 1000 * unchanged,
        "refresh 1% changed ms": 1000 * changed.seconds,
    }
    print(f"{args.documents} documents, {args.queries} queries of 3 words, top 10")
    print(f"index build           {build:8.2f} s")
    print(f"query (LocalSearch)   {query_median:8.2f} ms median, {query_p95:.2f} ms p95 (target: under 20 ms)")
    print(f"query (plain scan)    {scan_median:8.2f} ms median (of the first {min(args.queries, _SCANNED_QUERIES)})")
    print(f"scan / index          {scan_median / query_median:8.1f} x")
    print(f"refresh, nothing new  {1000 * unchanged:8.1f} ms")
    print(f"refresh, 1% changed   {1000 * changed.seconds:8.1f} ms ({changed.updated} documents read again)")
    return results


if __name__ == "__main__":
    main()
