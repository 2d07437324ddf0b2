#!/usr/bin/env bash
# Refresh constraints.txt, the pinned versions every install uses (README quick start, .ci/run):
#   bash tools/refresh-constraints.sh                 # after a change to pyproject.toml: keeps the other pins
#   bash tools/refresh-constraints.sh --upgrade       # the newest versions pyproject.toml's ranges allow
#   bash tools/refresh-constraints.sh --upgrade-package openai
# then review `git diff constraints.txt`, run the tests (bash .ci/run), commit.
# It resolves pyproject.toml with all its extras for CPython 3.11 on x86-64 Linux (CI's platform) against
# PyPI with uv's resolver (seconds, where pip's backtracking takes minutes; uv reads no pip configuration,
# so local wheel caches and constraint files of this machine do not leak into the pins). uv itself comes
# from PyPI into a throwaway venv. Every pin stays within the ranges pyproject.toml allows.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "uv>=0.9,<1"
"$work/venv/bin/uv" pip compile pyproject.toml --all-extras "$@" \
    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --custom-compile-command "bash tools/refresh-constraints.sh" \
    --quiet --output-file constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pins"
