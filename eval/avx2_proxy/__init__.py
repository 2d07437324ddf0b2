"""The AVX2 proxy: run a command on this AVX-512 machine with chosen libraries picking their AVX2-only code paths.

Why: onnxruntime (like torch and numpy) picks its kernels from what CPUID reports, and its int8 kernels compute
different numbers without VNNI (see docs/embeddings.md). CI runs on AVX-512 machines, users may have AVX2 only,
so the int8 tolerance must be checked on both kernel sets. The ways to make a process believe it has no AVX-512:
- CPUID faulting (`arch_prctl(ARCH_SET_CPUID, 0)`, the kernel then traps every CPUID) fails with ENODEV in
  these VMs: the hypervisor does not offer it;
- `qemu-x86_64 -cpu max` emulates an AVX2 CPU exactly but runs about 15x slower (minutes for one test), and
  Valgrind, which also decodes every instruction, is slower still.

How: `patch_library` copies a shared library with the first byte (0x0f) of every CPUID and XGETBV instruction
(as objdump decodes them, bytes checked before each patch) replaced by int3. `cpuid_avx2.c`, preloaded with
LD_PRELOAD, handles the resulting SIGTRAP: it runs the real instruction, clears the AVX-512, AVX-VNNI, BF16 and
AMX bits and resumes. `overlay` builds, once per package version and library contents, a folder that mirrors the
named packages (symlinks, with patched copies of their libraries) and goes first on PYTHONPATH. Everything else
then runs natively: the libraries choose their AVX2 kernels once, at start, and run them at full speed.

Limits: only the patched libraries see an AVX2 CPU (glibc, the interpreter and unpatched packages still use
AVX-512); the proxy reproduces which kernels a library chooses, not an AVX2 machine's speed (AVX2 code on this
AMD CPU is not an AVX2-only CPU); a thread that blocks SIGTRAP, a debugger, or code that installs its own SIGTRAP
handler would turn a patched CPUID into a crash or a stop.

    python eval/avx2_proxy -- python -m pytest tests/test_minilm_int8.py   # onnxruntime sees AVX2 only
    python eval/avx2_proxy --packages onnxruntime torch numpy -- python x.py
    python eval/avx2_proxy --print-env                                     # PYTHONPATH, LD_PRELOAD and RAG_AVX2_PROXY to export
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TRAP_SOURCE = Path(__file__).with_name("cpuid_avx2.c")
PROBE_SOURCE = Path(__file__).with_name("probe.c")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "avx2-proxy"
DEFAULT_PACKAGES = ("onnxruntime",)
MARKER = "RAG_AVX2_PROXY"  # set in a proxied command's environment: the packages that see an AVX2-only CPU
# objdump -d --no-show-raw-insn prints "  <address>:\t<mnemonic> ..." ; CPUID and XGETBV take no operands
INSTRUCTION = re.compile(rb"^\s*([0-9a-f]+):\s+(cpuid|xgetbv)\s*$", re.MULTILINE)
SECTION = re.compile(r"^\s*\d+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s", re.MULTILINE)
ENCODINGS = (b"\x0f\xa2", b"\x0f\x01\xd0")  # cpuid, xgetbv
INT3 = 0xCC
# what seen_features reports: (CPUID leaf 7 register: 1 = EBX, 2 = ECX, 3 = EDX; bit)
FEATURES = {"avx2": (1, 5), "avx512f": (1, 16), "avx512bw": (1, 30), "avx512_vnni": (2, 11), "amx_tile": (3, 24)}
ZMM_STATE = (1 << 5) | (1 << 6) | (1 << 7)  # XCR0: opmask, upper ZMM0-15, ZMM16-31


class ProxyError(RuntimeError):
    """The proxy cannot run here; the message says what is missing and how to get it."""


def supported() -> str | None:
    """Why the proxy cannot run on this machine, or None when it can."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"the AVX2 proxy needs x86-64 Linux (this is {sys.platform} on {platform.machine()})"
    missing = [f"{tool} (Debian/Ubuntu: apt-get install {package})" for tool, package in _tools().items() if shutil.which(tool) is None]
    return f"the AVX2 proxy needs {', '.join(missing)}" if missing else None


def _tools() -> dict[str, str]:
    return {os.environ.get("CC", "cc"): "gcc", "objdump": "binutils"}


def _require() -> None:
    reason = supported()
    if reason:
        raise ProxyError(reason)


def trap_library(cache: Path = DEFAULT_CACHE) -> Path:
    """The LD_PRELOAD library built from cpuid_avx2.c with the system C compiler ($CC, else cc), cached by source."""
    return _compiled(TRAP_SOURCE, cache)


def probe_library(cache: Path = DEFAULT_CACHE) -> Path:
    """probe.c compiled and patched: loaded under the proxy it reports what every patched library is told."""
    built = _compiled(PROBE_SOURCE, cache)
    target = built.with_name(f"patched-{built.name}")
    if not target.exists():
        scratch = target.with_name(f".build-{os.getpid()}-{target.name}")
        if patch_library(built, scratch) != 2:
            raise ProxyError(f"objdump found no CPUID and XGETBV in {built}")
        scratch.replace(target)
    return target


def _compiled(source: Path, cache: Path) -> Path:
    _require()
    text = source.read_bytes()
    target = cache / f"{source.stem}-{hashlib.sha256(text).hexdigest()[:16]}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".build-{os.getpid()}-{target.name}")
    compiler = os.environ.get("CC", "cc")
    done = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(scratch), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        scratch.unlink(missing_ok=True)
        raise ProxyError(f"{compiler} could not build {source.name}:\n{done.stderr}")
    scratch.replace(target)
    return target


def instruction_sites(library: Path) -> list[int]:
    """File offsets of every instruction objdump decodes as CPUID or XGETBV in `library`'s code sections."""
    _require()
    headers = subprocess.run(["objdump", "-h", "-w", str(library)], capture_output=True, text=True, check=True).stdout
    sections = [(int(vma, 16), int(size, 16), int(offset, 16)) for size, vma, offset in SECTION.findall(headers)]
    # the disassembly of a large library is hundreds of MB of text: grep filters it as it streams
    objdump = subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE)
    grep = subprocess.run(["grep", "-E", r"^\s*[0-9a-f]+:\s+(cpuid|xgetbv)\s*$"], stdin=objdump.stdout, capture_output=True)
    objdump.stdout.close()  # type: ignore[union-attr]
    if objdump.wait() != 0 or grep.returncode > 1:
        raise ProxyError(f"objdump could not disassemble {library}")
    return [_file_offset(int(address, 16), sections, library) for address, _ in INSTRUCTION.findall(grep.stdout)]


def _file_offset(address: int, sections: list[tuple[int, int, int]], library: Path) -> int:
    for vma, size, offset in sections:
        if vma and vma <= address < vma + size:
            return address - vma + offset
    raise ProxyError(f"{library}: address {address:#x} is in no section")


def patch_library(source: Path, target: Path) -> int:
    """Write `source` to `target` with each CPUID/XGETBV's first byte turned into int3; returns how many."""
    sites = instruction_sites(source)
    _write_patched(source, target, sites)
    return len(sites)


def _write_patched(source: Path, target: Path, sites: list[int]) -> None:
    """A site whose bytes are not exactly the instruction's encoding is an objdump/file mismatch: refused."""
    data = bytearray(source.read_bytes())
    for offset in sites:
        if not any(data[offset:offset + len(code)] == code for code in ENCODINGS):
            raise ProxyError(f"{source}: bytes at {offset:#x} are {bytes(data[offset:offset + 3]).hex()}, not CPUID or XGETBV")
        data[offset] = INT3
    target.write_bytes(data)
    shutil.copymode(source, target)


def package_folders(name: str) -> list[Path]:
    """The installed folder of import package `name` in this interpreter, plus its wheel's bundled `<name>.libs`."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ProxyError(f"package {name!r} is not installed in {sys.executable}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return [folder] + [libs for libs in [folder.with_name(f"{name}.libs")] if libs.is_dir()]


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _files(folders: Iterable[Path]) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _version(name: str) -> str:
    distributions = importlib.metadata.packages_distributions().get(name, [name])
    try:
        return importlib.metadata.version(distributions[0])
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def overlay_key(name: str) -> str:
    """`<name>-<version>-<hash>`: the hash covers the contents of the package's ELF files and the patcher itself."""
    folders = package_folders(name)
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in _files(folders):
        if _is_elf(path):
            digest.update(str(path.relative_to(folders[0].parent)).encode() + b"\0")
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return f"{name}-{_version(name)}-{digest.hexdigest()[:16]}"


def overlay(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """A folder to put first on PYTHONPATH in which package `name` is this interpreter's, its libraries patched.

    Files are symlinks to the installed ones except the libraries that hold CPUID/XGETBV, which are patched
    copies. Built once per version and library contents (a few seconds for onnxruntime), then reused."""
    _require()
    target = cache / f"overlay-{overlay_key(name)}"
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    folders = package_folders(name)
    root = folders[0].parent
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        files = _files(folders)
        libraries = [path for path in files if _is_elf(path)]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # objdump runs in its own processes
            sites = dict(zip(libraries, pool.map(instruction_sites, libraries)))
        for path in files:
            copy = scratch / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if sites.get(path):
                _write_patched(path, copy, sites[path])
            else:
                copy.symlink_to(path)  # a library without CPUID/XGETBV, like any other file, stays the original
        try:
            scratch.rename(target)
        except OSError:  # another process built it meanwhile
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def environment(packages: Sequence[str] = DEFAULT_PACKAGES, cache: Path = DEFAULT_CACHE, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) with the overlays of `packages` first on PYTHONPATH and the trap preloaded."""
    env = dict(os.environ if base is None else base)
    front = [str(overlay(name, cache)) for name in packages]
    env["PYTHONPATH"] = os.pathsep.join(front + [part for part in [env.get("PYTHONPATH", "")] if part])
    env["LD_PRELOAD"] = " ".join([str(trap_library(cache))] + [part for part in [env.get("LD_PRELOAD", "")] if part])
    env[MARKER] = ",".join(packages)  # benchmarks name the CPU kind by it (eval/bench_ingest.py: cpu_kind)
    return env


def run(command: Sequence[str], packages: Sequence[str] = DEFAULT_PACKAGES, cache: Path = DEFAULT_CACHE, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(command) under the proxy: `packages` choose their AVX2 code paths, all else runs natively."""
    return subprocess.run(list(command), env=environment(packages, cache, kwargs.pop("env", None)), **kwargs)



def seen_features(proxied: bool = True, cache: Path = DEFAULT_CACHE) -> dict[str, bool]:
    """What CPUID and XGETBV tell a library in a fresh child process: a patched probe under the proxy, or the
    unpatched one natively. `zmm_state`: XCR0 says the OS saves the AVX-512 registers (AVX-512 is usable)."""
    probe = probe_library(cache) if proxied else _compiled(PROBE_SOURCE, cache)
    env = environment((), cache) if proxied else None
    code = "import ctypes, sys; probe = ctypes.CDLL(sys.argv[1]); print(*[probe.probe_leaf7(r) for r in (1, 2, 3)], probe.probe_xcr0())"
    done = subprocess.run([sys.executable, "-c", code, str(probe)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ProxyError(f"the CPUID probe failed (exit {done.returncode}): {done.stderr.strip()}")
    *leaf7, xcr0 = (int(word) for word in done.stdout.split())
    seen = {name: bool(leaf7[register - 1] >> bit & 1) for name, (register, bit) in FEATURES.items()}
    return seen | {"zmm_state": xcr0 & ZMM_STATE == ZMM_STATE}
