"""Build a BEIR-layout retrieval set from the FAQs shipped in Debian documentation packages.

Technical documentation with real questions and their authors' own relevance judgments: every FAQ
entry is a question (the heading) and its answer (the body). The corpus holds every FAQ section's
body *without* its heading; each question heading that ends in "?" is a query whose one relevant
document is its own answer. Sections that are not questions stay in the corpus as distractors.

Sources (Debian bookworm): `python3.11-doc` (the Python FAQ, 8 pages of reStructuredText),
`debian-faq` (the Debian GNU/Linux FAQ, plain text), `git-doc` (gitfaq). Nothing is written by hand:
queries and judgments are the FAQs' own.

    python eval/build_faq_dataset.py --out .rag/datasets/faq          # runs `apt-get download` itself
    python eval/build_faq_dataset.py --debs DIR --out .rag/datasets/faq   # .deb files already downloaded
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

PACKAGES = ("python3.11-doc", "debian-faq", "git-doc")
RST_UNDERLINE = re.compile(r"^([=\-~^*+#])\1{2,}\s*$")
DEBIAN_HEADING = re.compile(r"^\d+(\.\d+)*\. \S")
GIT_QUESTION = re.compile(r"^(\S.*)::\s*$")

Section = tuple[str, str]  # (heading, body)


def rst_sections(text: str) -> Iterator[Section]:
    """Sections of a Sphinx page: a heading is a line underlined (and maybe overlined) by = - ~ ^ * + #."""
    lines = text.splitlines()
    heading: str | None = None
    body: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and not RST_UNDERLINE.match(line) and RST_UNDERLINE.match(following) and len(following.strip()) >= len(line.strip()):
            if heading is not None:
                yield heading, _rst_body(body)
            if body and RST_UNDERLINE.match(body[-1] if body else ""):
                body.pop()  # an overline belongs to the heading
            heading, body = line.strip(), []
            index += 2
            continue
        body.append(line)
        index += 1
    if heading is not None:
        yield heading, _rst_body(body)


def _rst_body(lines: list[str]) -> str:
    kept = [line for line in lines if not line.strip().startswith((".. only::", ".. contents::", ":tocdepth:"))]
    return "\n".join(kept).strip()


def debian_sections(text: str) -> Iterator[Section]:
    """The Debian FAQ as text: numbered headings at column 0 (possibly wrapped), bodies indented."""
    lines = text.replace("\xa0", " ").splitlines()
    start = lines.index("Chapter 1. Definitions and overview")  # the table of contents ends here
    heading: list[str] = []
    body: list[str] = []
    in_heading = False
    for line in lines[start:]:
        if line.startswith("Chapter "):
            continue
        if DEBIAN_HEADING.match(line):
            if heading:
                yield " ".join(heading), "\n".join(body).strip()
            heading, body, in_heading = [line.split(" ", 1)[1].strip()], [], True
        elif in_heading and line.strip() and not line.startswith(" "):
            heading.append(line.strip())  # a wrapped heading
        else:
            in_heading = False
            body.append(line.strip())
    if heading:
        yield " ".join(heading), "\n".join(body).strip()


def git_sections(text: str) -> Iterator[Section]:
    """gitfaq (AsciiDoc): `Question?::` at column 0 followed by its answer; anchors and rules dropped."""
    heading: str | None = None
    body: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = GIT_QUESTION.match(line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if match or (line.strip() and RST_UNDERLINE.match(following)):
            if heading is not None:
                yield heading, "\n".join(body).strip()
            heading, body = (match.group(1).strip() if match else line.strip()), []
        elif heading is not None and not RST_UNDERLINE.match(line) and not line.startswith("[["):
            body.append("" if line.strip() == "+" else line.strip())
    if heading is not None:
        yield heading, "\n".join(body).strip()


def faq_sections(root: Path) -> Iterator[tuple[str, Section]]:
    """(prefix, section) for every FAQ section found under an extracted package tree."""
    for page in sorted((root / "usr/share/doc/python3.11/html/_sources/faq").glob("*.rst.txt")):
        if page.name != "index.rst.txt":
            for section in rst_sections(page.read_text(encoding="utf-8")):
                yield f"python-{page.name.split('.')[0]}", section
    debian = root / "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"
    for section in debian_sections(gzip.decompress(debian.read_bytes()).decode("utf-8")):
        yield "debian", section
    for section in git_sections((root / "usr/share/doc/git-doc/gitfaq.txt").read_text(encoding="utf-8")):
        yield "git", section


def build(sections: Iterable[tuple[str, Section]], out: Path) -> tuple[int, int]:
    """Write a BEIR folder from (prefix, (heading, body)) sections: every body a document, every question heading a query."""
    corpus, queries, qrels = [], [], []
    for prefix, (heading, body) in sections:
        if len(body.split()) < 5:  # a chapter heading directly followed by its first question
            continue
        doc_id = f"{prefix}-{len(corpus):04d}"
        corpus.append({"_id": doc_id, "title": "", "text": body})
        if heading.endswith("?"):
            query_id = f"q{len(queries):04d}"
            queries.append({"_id": query_id, "text": " ".join(heading.replace("`", "").split())})
            qrels.append((query_id, doc_id))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    (out / "corpus.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus), encoding="utf-8")
    (out / "queries.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in queries), encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return len(corpus), len(queries)


def extract(debs: Path, into: Path, packages: tuple[str, ...] = PACKAGES) -> None:
    for package in packages:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"no {package}_*.deb in {debs}: run `apt-get download {' '.join(packages)}` there")
        subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(into)], check=True)


def build_from_debs(packages: tuple[str, ...], sections: Callable[[Path], Iterable[tuple[str, Section]]], out: Path, debs: Path | None) -> None:
    """Extract the packages' .deb files (downloaded with `apt-get download` when `debs` is None) and build the set."""
    with tempfile.TemporaryDirectory() as tmp:
        if debs is None:
            debs = Path(tmp) / "debs"
            debs.mkdir()
            subprocess.run(["apt-get", "download", *packages], cwd=debs, check=True)
        extract(debs, Path(tmp) / "root", packages)
        documents, questions = build(sections(Path(tmp) / "root"), out)
    print(f"{out}: {documents} documents, {questions} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where the BEIR folder is written (keep it out of the repo)")
    parser.add_argument("--debs", type=Path, help="folder holding the three .deb files (default: apt-get download into a temp folder)")
    args = parser.parse_args()
    build_from_debs(PACKAGES, faq_sections, args.out, args.debs)


if __name__ == "__main__":
    main()
