"""Large-index maintenance benchmark (issue 19): how long keeping an index current takes as it grows.

`build` writes a synthetic corpus per size (text files of pseudo-words drawn from a Zipf distribution, seeded,
50 paragraphs each, about 50 chunks a file) and ingests it with `StandInEmbedder` below (a random vector per text,
registered as a plug-in by dotted path: the bundled model would need about 25 minutes for 100,000 chunks here,
and embedding is not what this measures; a changed file's 50 chunks are the only ones embedded).
Run it untimed (nice'd: a long cpu-shared job holds up everyone's exclusive runs); it keeps a pristine copy of
each index (`pristine-N`). `measure` then times, per size, each as its own `rag ingest` process:
  - unchanged re-ingest, one changed file, one removed file (the file is put back afterwards, untimed);
  wall time minus the start of a `rag` process that does nothing (`rag config --help`), and the in-process
  seconds the ingest reports; and, in this process, what is O(corpus): the manifest scan, the catalog reads,
  the Chroma count and id list, the BM25 refresh after one changed file, the full BM25 build it replaced, and a
  reader's cold BM25 load. Each checkout's runs start from the pristine copy (the change-and-restore cycles
  leave BM25 segments and Chroma log entries behind), and `--rounds` alternates the checkouts (A B, B A, ...).

    python eval/bench_maintenance.py build --sizes 10000 100000 [--workdir /tmp/rag-maintenance]
    python eval/bench_maintenance.py measure [--workdir /tmp/rag-maintenance] [--out eval/results/maintenance.json]
        [--sizes 100000] [--repeat 5] [--rounds 2 --checkouts /work/main .] [--no-breakdown]

`scifact` times the unchanged re-ingest of SciFact (5,183 documents, one JSON Lines file) for each checkout given
(`--checkouts /work/baseline .`: before and after, in one run), after a build (untimed: `--repeat 0` builds only) whose embeddings come from
tests/fake_openai.py's endpoint (an unchanged re-ingest embeds nothing, so the model does not matter there):

    python eval/bench_maintenance.py scifact --checkouts /work/baseline . --repeat 0   # build, untimed
    python eval/bench_maintenance.py scifact --checkouts /work/baseline . [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
from bench_ingest import cpu_kind  # noqa: E402  (light: stdlib only at import)

PARAGRAPHS_PER_FILE = 50
WORDS_PER_PARAGRAPH = 60
STAND_IN = {"RAG_EMBEDDING__PROVIDER": "bench_maintenance:StandInEmbedder", "PYTHONPATH": str(REPO / "eval"), "HF_HUB_OFFLINE": "1"}
DIMENSIONS = 64
SCIFACT_PORT = 18931  # the fake embedding endpoint's port in `scifact`


class StandInEmbedder:
    """A fixed pseudo-random unit vector per text, seeded by its hash: no meaning, no model to load, so the
    timings show the index's own work (`embedding.provider: bench_maintenance:StandInEmbedder`, eval/ on the path)."""

    def __init__(self, config: object = None) -> None:
        self.model_id = f"stand-in-random-{DIMENSIONS}"

    def embed(self, texts: list[str]) -> np.ndarray:
        import hashlib

        vectors = np.stack([np.random.default_rng(int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")).standard_normal(DIMENSIONS) for t in texts]) if texts else np.zeros((0, DIMENSIONS))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def pseudo_words(rng: np.random.Generator, count: int) -> list[str]:
    syllables = ["ka", "to", "ri", "mo", "ne", "sa", "lu", "vi", "po", "de", "gra", "tin", "pel", "ox", "um", "ar", "es", "ion", "ing", "ed"]
    return ["".join(rng.choice(syllables, size=int(rng.integers(2, 5)))) for _ in range(count)]


def write_corpus(folder: Path, chunks: int, seed: int = 0) -> None:
    """About `chunks` chunks of Zipf-distributed pseudo-words, in files of PARAGRAPHS_PER_FILE paragraphs."""
    rng = np.random.default_rng(seed)
    vocabulary = pseudo_words(rng, 50_000)
    weights = 1 / np.arange(1, len(vocabulary) + 1) ** 1.07
    weights /= weights.sum()
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(max(chunks // PARAGRAPHS_PER_FILE, 1)):
        picks = rng.choice(len(vocabulary), size=(PARAGRAPHS_PER_FILE, WORDS_PER_PARAGRAPH), p=weights)
        text = "\n\n".join(" ".join(vocabulary[i] for i in row) + "." for row in picks)
        (folder / f"doc{number:05d}.txt").write_text(text + "\n")


CHECKOUT = {"path": REPO}  # whose `rag` is timed (`measure --checkout`): its .venv, else this interpreter


def rag_command(*args: str) -> list[str]:
    venv_python = CHECKOUT["path"] / ".venv" / "bin" / "python"
    return [str(venv_python) if venv_python.is_file() else sys.executable, "-m", "rag", *args]


def timed_run(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT["path"], env={**os.environ, **STAND_IN}, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def build(workdir: Path, sizes: list[int]) -> None:
    for size in sizes:
        corpus, index = workdir / f"corpus-{size}", workdir / f"index-{size}"
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(index, ignore_errors=True)
        write_corpus(corpus, size)
        seconds, out = timed_run(rag_command("ingest", str(corpus), "--index", str(index), "--json"))
        timed_run(rag_command("ingest", str(corpus), "--index", str(index), "--json"))  # a first re-run may still fill token counts
        shutil.rmtree(pristine_copy(workdir, size), ignore_errors=True)
        shutil.copytree(index, pristine_copy(workdir, size))  # what `measure` resets the index to
        print(f"{size}: ingested in {seconds:.0f} s: {json.loads(out)['chunks_added']} chunks", flush=True)


def clock(action: Callable[[], object], repeat: int = 3) -> float:
    """Best of `repeat` runs, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def breakdown(corpus: Path, index_dir: Path) -> dict[str, float]:
    """In-process timings of every step whose cost grows with the index."""
    import bm25s

    from rag.config import load_config
    from rag.index.bm25 import BM25Index, Segment, Tokenizer, catch_up
    from rag.index.store import Index
    from rag.ingest.scan import scan

    config = load_config()
    figures: dict[str, float] = {}
    with Index.open(index_dir, config) as index:
        catalog = index.manifest
        found = scan([str(corpus)], config.ingest)
        figures["scan folder (os.walk)"] = clock(lambda: scan([str(corpus)], config.ingest))
        figures["stat + manifest row per file"] = clock(lambda: [(f.path.stat(), catalog.source(f.path.as_posix())) for f in found.files])
        figures["catalog: all sources"] = clock(catalog.sources)
        figures["catalog: all chunk ids"] = clock(catalog.all_chunk_ids)
        figures["catalog: all chunk texts"] = clock(catalog.chunk_texts, repeat=1)
        figures["Chroma: count"] = clock(index.vectors.count)
        figures["Chroma: all ids (repair after a crash)"] = clock(index.vectors.ids, repeat=1)
        ids, texts = catalog.chunk_texts()
        tokenizer = Tokenizer(config.bm25)

        def full_bm25s() -> None:  # what every change cost before segments: tokenise and index everything
            tokens = bm25s.tokenize(texts, stopwords=config.bm25.stopwords or [], stemmer=tokenizer._stemmer(), show_progress=False)
            bm25s.BM25(k1=config.bm25.k1, b=config.bm25.b, method="lucene").index(tokens, show_progress=False)

        figures["BM25: full bm25s build (before)"] = clock(full_bm25s, repeat=1)
        current = BM25Index(config.bm25)
        figures["BM25: full segment build"] = clock(lambda: current.build(ids, texts), repeat=1)
        source = catalog.sources()[0].path
        changed = set(catalog.chunk_ids_of(source))

        class OneFileChanged:  # the catalog as it reads after one file's chunks were replaced by as many new ones
            def all_chunk_ids(self) -> set[str]:
                return (catalog.all_chunk_ids() - changed) | {f"new-{c}" for c in changed}

            def chunks_by_id(self, wanted: list[str]) -> list[object]:
                found = {f"new-{c.chunk_id}": c for c in catalog.chunks_by_id(sorted(changed))}
                return [type("C", (), {"chunk_id": w, "text": found[w].text}) for w in wanted]

        figures["BM25: refresh after one changed file"] = clock(lambda: catch_up(current, OneFileChanged(), config.bm25))  # type: ignore[arg-type]
        folder = index_dir / "bm25"
        segment_dirs = [p for p in folder.iterdir() if p.is_dir()]
        figures["BM25: cold load by a reader"] = clock(lambda: [Segment.load(p) for p in segment_dirs])
        figures["BM25: one query"] = clock(lambda: current.search(texts[0][:80], 10))
        figures["chunks"] = float(len(ids))
    return figures


def pristine_copy(workdir: Path, size: int) -> Path:
    """The index as `build` left it, kept beside the one the runs change (`index-N`): every change-and-restore
    cycle leaves traces in the index (a BM25 segment, tombstones and an unpersisted log tail in Chroma's HNSW
    index), so each checkout's runs start from this same state."""
    return workdir / f"pristine-{size}"


def reset_index(workdir: Path, size: int) -> None:
    index_dir, pristine = workdir / f"index-{size}", pristine_copy(workdir, size)
    if not pristine.is_dir():  # built before pristine copies were kept: this index's present state becomes the reference
        shutil.copytree(index_dir, pristine)
    shutil.rmtree(index_dir)
    shutil.copytree(pristine, index_dir)


def check_built_from(index_dir: Path, corpus: Path) -> None:
    """Refuse an index built from the corpus at another path (a workdir copied or renamed): its sources are named by
    their old paths, so the first ingest would add the corpus again under the new ones, twice the chunks."""
    with sqlite3.connect(index_dir / "manifest.sqlite") as manifest:
        row = manifest.execute("SELECT path FROM sources LIMIT 1").fetchone()
    if row is not None and Path(row[0]).parent != corpus.resolve():
        raise SystemExit(f"{index_dir} was built from {Path(row[0]).parent}, not {corpus}: run `build` with this --workdir")


def run_scenarios(workdir: Path, size: int, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """`repeat` cycles of unchanged / one file changed / one file removed on the reset index: (wall, in-process) each."""
    corpus, index_dir = workdir / f"corpus-{size}", workdir / f"index-{size}"
    reset_index(workdir, size)
    check_built_from(index_dir, corpus)
    ingest = rag_command("ingest", str(corpus), "--index", str(index_dir), "--json")
    victim = sorted(corpus.iterdir())[len(list(corpus.iterdir())) // 2]
    original = victim.read_text()
    runs: dict[str, list[tuple[float, float]]] = {}

    def scenario(name: str, prepare: Callable[[], None]) -> None:
        prepare()
        wall, stdout = timed_run(ingest)
        runs.setdefault(name, []).append((wall, json.loads(stdout)["seconds"]))

    timed_run(ingest)  # settle: the first run after a copy reads the files cold
    for _ in range(repeat):
        scenario("unchanged re-ingest", lambda: None)
        scenario("one file changed", lambda: victim.write_text(original.replace(".", " novelword.", 3)))
        scenario("one file removed", victim.unlink)
        victim.write_text(original)
        timed_run(ingest)  # put it back, untimed
    return runs


def measure(workdir: Path, checkouts: list[Path], sizes: list[int], repeat: int = 5, rounds: int = 1, with_breakdown: bool = True) -> dict[str, object]:
    """Per round, per checkout, per size: reset the index to its pristine copy, then `repeat` runs of each
    scenario (one run of a 1-2 s process moves by a few tenths of a second on a 2-core machine even when nothing
    else runs, and the machine's state drifts over minutes: with several checkouts, rounds alternate them).
    Reported per checkout: the median over all its runs, and every run."""
    sizes = [size for size in sizes if (workdir / f"corpus-{size}").is_dir()]
    if not sizes:
        raise SystemExit(f"no corpus under {workdir} for these sizes: run `build` first")
    runs: dict[Path, dict[int, dict[str, list[tuple[float, float]]]]] = {c: {s: {} for s in sizes} for c in checkouts}
    starts: dict[Path, list[float]] = {c: [] for c in checkouts}
    for round_number in range(rounds):
        for checkout in checkouts if round_number % 2 == 0 else checkouts[::-1]:
            CHECKOUT["path"] = checkout
            starts[checkout].append(min(timed_run(rag_command("config", "--help"))[0] for _ in range(3)))
            for size in sizes:
                for name, timed in run_scenarios(workdir, size, repeat).items():
                    runs[checkout][size].setdefault(name, []).extend(timed)
            print(f"round {round_number + 1}/{rounds}: {checkout} done", file=sys.stderr, flush=True)
    results: dict[str, object] = {"checkouts": {}}
    for checkout in checkouts:
        start_s = min(starts[checkout])
        by_size = {}
        for size in sizes:
            rows = {}
            for name, timed in runs[checkout][size].items():
                wall, inside = float(np.median([w for w, _ in timed])), float(np.median([i for _, i in timed]))
                rows[name] = {"wall_s": round(wall, 3), "beyond_start_s": round(wall - start_s, 3), "in_process_s": round(inside, 3),
                              "runs_beyond_start_s": [round(w - start_s, 3) for w, _ in timed]}
            by_size[str(size)] = {"scenarios": rows, "breakdown": {"chunks": float(size)}}
        results["checkouts"][str(checkout)] = {"process_start_s": round(start_s, 3), "sizes": by_size}  # type: ignore[index]
    if with_breakdown:  # this checkout's code, in this process, on each reset index
        for size in sizes:
            reset_index(workdir, size)
            steps = {k: round(v, 4) for k, v in breakdown(workdir / f"corpus-{size}", workdir / f"index-{size}").items()}
            results["breakdown"] = {**results.get("breakdown", {}), str(size): steps}  # type: ignore[dict-item]
    results["machine"] = {"cpus": os.cpu_count(), "cpu_kind": cpu_kind(), "python": platform.python_version(),
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    results["repeat"], results["rounds"] = repeat, rounds
    results["command"] = (f"python eval/bench_maintenance.py measure --repeat {repeat} --rounds {rounds} --sizes {' '.join(map(str, sizes))} "
                          f"--checkouts {' '.join(str(c) for c in checkouts)}" + ("" if with_breakdown else " --no-breakdown"))
    return results


def print_table(results: dict[str, object]) -> None:
    checkouts: dict[str, dict[str, object]] = results["checkouts"]  # type: ignore[assignment]
    print(f"CPU kind: {results['machine']['cpu_kind']}; {results['rounds']} round(s) of {results['repeat']} runs per scenario")  # type: ignore[index]
    for checkout, found in checkouts.items():
        sizes: dict[str, dict[str, dict[str, object]]] = found["sizes"]  # type: ignore[assignment]
        names = list(sizes)
        print(f"\n{checkout}: process start {found['process_start_s']} s")
        print("| median beyond process start (in-process) | " + " | ".join(f"{int(n):,} chunks" for n in names) + " |")
        print("|---|" + "---|" * len(names))
        for scenario in sizes[names[0]]["scenarios"]:
            cells = [sizes[n]["scenarios"][scenario] for n in names]  # type: ignore[index]
            print(f"| {scenario} | " + " | ".join(f"{c['beyond_start_s']:.2f} s ({c['in_process_s']:.2f} s)" for c in cells) + " |")
    steps: dict[str, dict[str, float]] = results.get("breakdown", {})  # type: ignore[assignment]
    if steps:
        names = list(steps)
        print("\n| step (this checkout, in-process) | " + " | ".join(f"{int(n):,} chunks" for n in names) + " |")
        print("|---|" + "---|" * len(names))
        for step in steps[names[0]]:
            if step != "chunks":
                print(f"| {step} | " + " | ".join(f"{1000 * steps[n][step]:.1f} ms" for n in names) + " |")


def scifact(checkouts: list[Path], workdir: Path, repeat: int) -> None:
    """Best-of-`repeat` unchanged re-ingest of SciFact per checkout (its own .venv), against the fake endpoint."""
    sys.path.insert(0, str(REPO))
    from tests.fake_openai import FakeOpenAI

    corpus = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    print("| checkout | unchanged re-ingest, wall (in-process) |\n|---|---|")
    with FakeOpenAI(port=SCIFACT_PORT) as server:  # a fixed port: the model id names the URL, and must not change
        endpoint = {"RAG_EMBEDDING__PROVIDER": "openai", "RAG_EMBEDDING__BASE_URL": server.base_url, "RAG_EMBEDDING__API_KEY": "test-key",  # what tests/fake_openai.py accepts
                    "RAG_EMBEDDING__MODEL": "fake-embed", "HF_HUB_OFFLINE": "1"}
        for checkout in checkouts:
            checkout = checkout.resolve()
            index = workdir / f"scifact-{checkout.name}"
            command = [str(checkout / ".venv" / "bin" / "python"), "-m", "rag", "ingest", str(corpus), "--index", str(index), "--json"]
            env = {**os.environ, **endpoint}
            if not (index / "manifest.sqlite").is_file():  # untimed: build with `--repeat 0` under cpu-shared first
                built = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
                if built.returncode != 0:
                    raise SystemExit(f"ingest failed in {checkout}:\n{built.stderr[-2000:]}")
            runs = []
            for _ in range(repeat):
                started = time.perf_counter()
                done = subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True, text=True)
                runs.append((time.perf_counter() - started, json.loads(done.stdout)["seconds"]))
            if not runs:
                continue
            wall, inside = min(runs)
            print(f"| {checkout} | {wall:.2f} s ({inside:.2f} s) |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "measure", "scifact"])
    parser.add_argument("--checkouts", type=Path, nargs="+", default=[REPO], help="measure, scifact: the checkouts whose `rag` is timed (each with its .venv, else this Python)")
    parser.add_argument("--repeat", type=int, default=5, help="scifact: best of N; measure: N runs per scenario per round (the median over all rounds is reported)")
    parser.add_argument("--rounds", type=int, default=1, help="measure: rounds, alternating the checkouts' order (A B, B A, ...)")
    parser.add_argument("--no-breakdown", action="store_true", help="measure: time the scenarios only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rag-maintenance"))
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "maintenance.json")
    args = parser.parse_args()
    if args.step == "build":
        build(args.workdir, args.sizes)
    elif args.step == "scifact":
        scifact(args.checkouts, args.workdir, args.repeat)
    else:
        os.environ.update(STAND_IN)
        results = measure(args.workdir, [c.resolve() for c in args.checkouts], args.sizes, args.repeat, args.rounds, not args.no_breakdown)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print_table(results)


if __name__ == "__main__":
    main()
