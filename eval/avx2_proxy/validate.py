"""The AVX2 proxy checked against qemu: tests/test_minilm_int8.py's texts embedded by the int8 build and the fp32
reference natively, under the proxy and under `qemu-x86_64 -cpu max` (an exact AVX2 CPU, about 15x slower).
Prints each run's int8-vs-fp32 cosines, how far its int8 vectors are from the native ones, whether the proxy's
and qemu's vectors are the same bit for bit, and wall times (one run each: a comparison, not a timed benchmark).

    python eval/avx2_proxy/validate.py             # about 3 minutes on 2 cores, nearly all of it qemu
    python eval/avx2_proxy/validate.py --no-qemu   # seconds
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avx2_proxy import DEFAULT_CACHE, environment  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EMBED = """import sys, numpy
sys.path.insert(0, 'tests')
from pathlib import Path
from test_minilm_int8 import int8_and_fp32_vectors
numpy.save(sys.argv[2], numpy.stack(int8_and_fp32_vectors(Path(sys.argv[1]))))
"""


def embed(prefix: list[str], env: dict[str, str] | None, models: Path, out: Path) -> float:
    """Wall seconds of one child process embedding the texts into `out` (int8 and fp32 stacked)."""
    started = time.perf_counter()
    subprocess.run([*prefix, sys.executable, "-c", EMBED, str(models), str(out)], cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR", help="the proxy's cache (default: %(default)s)")
    parser.add_argument("--no-qemu", action="store_true", help="compare native and proxy only")
    args = parser.parse_args()
    runs = {"native": ([], None), "proxy": ([], environment(cache=args.cache))}
    if not args.no_qemu:
        if shutil.which("qemu-x86_64") is None:
            parser.error("qemu-x86_64 is not installed (Debian: apt-get install qemu-user), or pass --no-qemu")
        runs["qemu -cpu max"] = (["qemu-x86_64", "-cpu", "max"], None)
    with tempfile.TemporaryDirectory() as scratch:
        models = Path(scratch) / "models"
        embed([], None, models, Path(scratch) / "warm.npy")  # builds the int8 model once, outside the timings
        seconds = {name: embed(prefix, env, models, Path(scratch) / f"{index}.npy") for index, (name, (prefix, env)) in enumerate(runs.items())}
        vectors = {name: np.load(Path(scratch) / f"{index}.npy") for index, name in enumerate(runs)}
    native = vectors["native"][0]
    print("| run | int8 vs fp32, mean / min cosine | int8 vs native int8, min cosine | wall s |\n|---|---|---|---|")
    for name, (int8, fp32) in vectors.items():
        cosines = (int8 * fp32).sum(axis=1)
        print(f"| {name} | {cosines.mean():.4f} / {cosines.min():.4f} | {(int8 * native).sum(axis=1).min():.4f} | {seconds[name]:.1f} |")
    if "qemu -cpu max" in vectors:
        same = np.array_equal(vectors["proxy"], vectors["qemu -cpu max"])
        print(f"proxy and qemu vectors (int8 and fp32) identical: {same}")


if __name__ == "__main__":
    main()
