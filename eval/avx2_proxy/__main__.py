"""Command line of the AVX2 proxy: run a command with chosen packages on their AVX2-only code paths (see __init__)."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

if not __package__:  # run as `python eval/avx2_proxy`: make the package importable by name
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avx2_proxy import DEFAULT_CACHE, DEFAULT_PACKAGES, MARKER, ProxyError, environment, seen_features  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python eval/avx2_proxy",
        description="Run COMMAND on this AVX-512 machine with the named packages (of this interpreter) choosing their\n"
        "AVX2-only code paths, at native speed: their libraries' CPUID/XGETBV trap into a handler that hides\n"
        "AVX-512, AVX-VNNI, BF16 and AMX. Only those packages see AVX2, and speed is not an AVX2 machine's.\n"
        "The patched copies are built once per package version and contents (onnxruntime: seconds).",
        epilog="examples:\n"
        "  python eval/avx2_proxy -- .venv/bin/python -m pytest tests/test_minilm_int8.py\n"
        "  python eval/avx2_proxy --packages onnxruntime torch numpy -- .venv/bin/python x.py\n"
        "  eval \"$(python eval/avx2_proxy --print-env)\"    # this shell's commands run under the proxy\n"
        "  python eval/avx2_proxy --check                  # what patched code sees, natively and proxied",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), metavar="NAME", help="import names to patch (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR", help="where the trap library and overlays are kept (default: %(default)s)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--print-env", action="store_true", help=f"print `export PYTHONPATH=... LD_PRELOAD=... {MARKER}=...` for a shell")
    action.add_argument("--check", action="store_true", help="print the CPU features a patched library is told, natively and under the proxy")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not (command or args.check or args.print_env):
        parser.error("give a COMMAND after --, or --print-env / --check")
    try:
        if args.check:
            for label, proxied in (("native", False), ("proxied", True)):
                print(f"{label:8}", " ".join(f"{name}={'yes' if on else 'no'}" for name, on in seen_features(proxied, args.cache).items()))
            return 0
        env = environment(args.packages, args.cache)
        if args.print_env:
            print("export " + " ".join(f"{name}={shlex.quote(env[name])}" for name in ("PYTHONPATH", "LD_PRELOAD", MARKER)))
            return 0
        return subprocess.run(command, env=env).returncode
    except ProxyError as error:
        print(f"avx2 proxy: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
