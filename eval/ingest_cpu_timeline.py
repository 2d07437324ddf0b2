"""How busy the cores are through one ingest from nothing: CPU use of the ingest's process tree (the reader's child
included) second by second, and when the first and last embedding calls ran. It bounds what overlapping more work
could still gain: only core-seconds left idle can be filled.

    # about 2 minutes natively on 2 cores (SciFact)
    python eval/ingest_cpu_timeline.py ../shared/datasets/scifact/corpus.jsonl
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil


def process_tree_cpu_s(root: psutil.Process, seen: dict[int, float]) -> float:
    """CPU seconds the process tree used since the last call; `seen` keeps each process's total so far. A child
    first seen counts in full (all children start during the ingest); one that ended since loses its last share."""
    used = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # it just ended: its last share is lost, the others' still count
            continue
        total = times.user + times.system
        used += total - seen.get(process.pid, 0.0)
        seen[process.pid] = total
    return used


def main() -> None:
    from rag.config import load_config
    from rag.index.embedders.minilm import MiniLMOnnxEmbedder
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="what to ingest, into a fresh index in a temporary folder")
    args = parser.parse_args()

    started = time.monotonic()
    embed_calls: list[tuple[float, float]] = []
    embed = MiniLMOnnxEmbedder.embed

    def timed_embed(self: MiniLMOnnxEmbedder, texts: list[str]):  # type: ignore[no-untyped-def]
        begun = time.monotonic() - started
        vectors = embed(self, texts)
        embed_calls.append((begun, time.monotonic() - started))
        return vectors

    MiniLMOnnxEmbedder.embed = timed_embed  # type: ignore[method-assign]
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        me, seen = psutil.Process(), {}
        process_tree_cpu_s(me, seen)
        last_at = time.monotonic()
        while not done.wait(1.0):
            used, now = process_tree_cpu_s(me, seen), time.monotonic()
            samples.append((now - started, 100 * used / (now - last_at)))
            last_at = now

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as work, Index.open(Path(work) / "index", load_config(), writable=True) as index:
        report = Ingestor(index).ingest(args.paths)
    ended = time.monotonic() - started
    done.set()

    if not embed_calls:
        raise SystemExit("nothing was embedded by the bundled MiniLM model: check the paths and embedding.provider")
    cores = os.cpu_count() or 1
    first, last = embed_calls[0][0], embed_calls[-1][1]
    phases = {"before the first embedding": (0.0, first), "embedding": (first, last), "after the last embedding": (last, ended)}
    print(f"{report.texts_embedded} chunks embedded, {ended:.1f} s in all, {cores} cores")
    for name, (begin, end) in phases.items():
        inside = [use for at, use in samples if begin < at <= end]
        mean = sum(inside) / len(inside) if inside else float("nan")
        idle = (end - begin) * (100 * cores - mean) / 100
        print(f"  {name:<27} {end - begin:6.1f} s at {mean:5.0f}% CPU: {idle:5.1f} core-seconds idle")


if __name__ == "__main__":
    main()
