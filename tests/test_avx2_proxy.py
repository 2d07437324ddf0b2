"""The AVX2 proxy (eval/avx2_proxy): onnxruntime's AVX2 int8 kernels, and the tolerance docs/embeddings.md states
for them, checked on an AVX-512 machine at native speed instead of under qemu (see the proxy's docstring)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from helpers import load_eval_script
from test_minilm_int8 import int8_and_fp32_vectors

proxy = load_eval_script("avx2_proxy")
pytestmark = pytest.mark.skipif(proxy.supported() is not None, reason=str(proxy.supported()))

CPU_FLAGS = set(next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])) if Path("/proc/cpuinfo").exists() else set()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("avx2-proxy")


def test_patched_code_is_told_avx2_only_and_unpatched_code_the_truth(cache: Path) -> None:
    native = proxy.seen_features(proxied=False, cache=cache)
    assert {name for name, on in native.items() if on and name != "zmm_state"} == set(proxy.FEATURES) & CPU_FLAGS
    assert proxy.seen_features(proxied=True, cache=cache) == {name: name == "avx2" and "avx2" in CPU_FLAGS for name in native}


def test_only_cpuid_and_xgetbv_bytes_change(cache: Path, tmp_path: Path) -> None:
    built = proxy._compiled(proxy.PROBE_SOURCE, cache)
    assert proxy.patch_library(built, tmp_path / "patched.so") == 2
    before, after = built.read_bytes(), (tmp_path / "patched.so").read_bytes()
    changed = [offset for offset in range(len(before)) if before[offset] != after[offset]]
    assert len(changed) == 2 and {before[o:o + 2] for o in changed} == {b"\x0f\xa2", b"\x0f\x01"}  # cpuid, xgetbv
    assert {after[o] for o in changed} == {0xCC}


def test_the_int8_tolerance_holds_on_the_avx2_kernels(cache: Path, tmp_path: Path) -> None:
    """The child computes its vectors with the AVX2 kernels (so they differ from this process's where the CPU has
    AVX-512) and passes tests/test_minilm_int8.py's own tolerance checks with them (the fused attention of
    unpadded batches included)."""
    models = tmp_path / "models"
    native = int8_and_fp32_vectors(models)[0]  # also builds the model file the child reuses
    child = (
        "import json, sys, numpy, onnxruntime\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_minilm_int8 import assert_fused_attention_stays_close, assert_int8_stays_close, fused_and_unfused_vectors, int8_and_fp32_vectors\n"
        "int8, fp32 = int8_and_fp32_vectors(__import__('pathlib').Path(sys.argv[1]))\n"
        "numpy.save(sys.argv[2], int8)\n"
        "cosines = (int8 * fp32).sum(axis=1)\n"
        "print(json.dumps({'onnxruntime': onnxruntime.__file__, 'mean': float(cosines.mean()), 'min': float(cosines.min())}))\n"
        "assert_int8_stays_close(int8, fp32)\n"
        "assert_fused_attention_stays_close(*fused_and_unfused_vectors(__import__('pathlib').Path(sys.argv[1])))\n"
    )
    started = time.perf_counter()
    done = proxy.run([sys.executable, "-c", child, str(models), str(tmp_path / "avx2.npy")], cache=cache, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    print(f"under the proxy: {time.perf_counter() - started:.1f} s, int8 vs fp32 mean {report['mean']:.4f} min {report['min']:.4f}")
    assert Path(report["onnxruntime"]).is_relative_to(cache)  # the patched onnxruntime ran, not the installed one
    avx2 = np.load(tmp_path / "avx2.npy")
    if "avx512f" in CPU_FLAGS:
        assert np.abs(avx2 - native).max() > 1e-3  # other kernels, other roundings (docs: min cosine 0.988)
    else:
        assert np.allclose(avx2, native, atol=1e-6)  # an AVX2-only CPU already runs these kernels


def test_the_overlay_is_reused_and_follows_the_installed_files(cache: Path) -> None:
    first = proxy.overlay("onnxruntime", cache)
    stamp = first.stat().st_mtime_ns
    started = time.perf_counter()
    assert proxy.overlay("onnxruntime", cache) == first and first.stat().st_mtime_ns == stamp
    assert time.perf_counter() - started < 5  # hashing the libraries, not patching them again
    assert first.name == f"overlay-{proxy.overlay_key('onnxruntime')}" and "-1." in first.name  # name-version-hash
    assert [p.name for p in cache.iterdir() if p.name.startswith(".build-")] == []


def test_threads_faulthandler_and_other_sigtraps_behave_as_without_the_proxy(cache: Path) -> None:
    child = (
        "import ctypes, faulthandler, sys, threading\n"
        "faulthandler.enable()\n"
        "probe = ctypes.CDLL(sys.argv[1])\n"
        "seen = set()\n"
        "def ask():\n"
        "    for _ in range(2000):\n"
        "        seen.add((probe.probe_leaf7(1), probe.probe_leaf7(2), probe.probe_xcr0()))\n"
        "threads = [threading.Thread(target=ask) for _ in range(8)]\n"
        "[thread.start() for thread in threads]\n"
        "[thread.join() for thread in threads]\n"
        "print(len(seen), flush=True)\n"
        "if sys.argv[2] == 'trap': __import__('os').kill(__import__('os').getpid(), 5)  # SIGTRAP from outside\n"
    )
    probe = str(proxy.probe_library(cache))
    done = proxy.run([sys.executable, "-c", child, probe, "-"], packages=(), cache=cache, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr  # 48,000 trapped CPUIDs, one answer
    unpatched = str(proxy._compiled(proxy.PROBE_SOURCE, cache))
    without = subprocess.run([sys.executable, "-c", child, unpatched, "trap"], capture_output=True, text=True, timeout=60)
    with_proxy = proxy.run([sys.executable, "-c", child, probe, "trap"], packages=(), cache=cache, capture_output=True, text=True, timeout=60)
    assert without.returncode == with_proxy.returncode == -signal.SIGTRAP


def test_a_missing_tool_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", "cc")
    with pytest.raises(proxy.ProxyError) as raised:
        proxy.overlay("onnxruntime", tmp_path)
    assert "apt-get install gcc" in str(raised.value) and "apt-get install binutils" in str(raised.value)
