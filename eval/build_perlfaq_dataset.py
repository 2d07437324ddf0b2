"""Build a BEIR-layout retrieval dev set from the Perl FAQ (perlfaq1-9) shipped in Debian's `perl-doc` package.

A second set of technical questions against their answers, of the same kind as the held-out FAQ set
(`eval/build_faq_dataset.py`) but from another source, so the fusion can be developed on data where
dense retrieval may beat BM25 while the FAQ set stays held out. Every `=head2` section of perlfaq1-9 is
a document (its body, without the heading); every heading that ends in "?" is a query whose one relevant
document is its own answer. Nothing is written by hand: questions and judgments are the FAQ's own.

    python eval/build_perlfaq_dataset.py --out .rag/datasets/perlfaq          # runs `apt-get download perl-doc`
    python eval/build_perlfaq_dataset.py --debs DIR --out .rag/datasets/perlfaq
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_faq_dataset import Section, build, build_from_debs  # noqa: E402

POD_DOUBLE = re.compile(r"([A-Z])<<+\s+(.*?)\s+>>+")  # C<< $x->y >>: the text may hold < and >
POD_SINGLE = re.compile(r"([A-DF-Z])<([^<>]*)>")  # B<bold>, C<code>, L<link>, innermost first
POD_ESCAPE = re.compile(r"E<([^<>]*)>")  # E<lt>, E<gt>: replaced last, so the < they make starts no code
ESCAPES = {"lt": "<", "gt": ">", "sol": "/", "verbar": "|", "quot": '"', "amp": "&"}


def _code_text(match: re.Match[str]) -> str:
    kind, text = match.group(1), match.group(2)
    if kind == "L":  # L<text|target> shows the text; L<target> the target
        return text.split("|", 1)[0] if "|" in text else text
    return "" if kind in "XZ" else text  # X<index entry>, Z<> print nothing


def pod_plain(text: str) -> str:
    """POD formatting codes reduced to their text, so neither retriever sees markup the question lacks."""
    text = POD_DOUBLE.sub(_code_text, text)
    previous = None
    while previous != text:
        previous, text = text, POD_SINGLE.sub(_code_text, text)
    return POD_ESCAPE.sub(lambda m: ESCAPES.get(m.group(1), m.group(1)), text)


def pod_sections(text: str) -> Iterator[Section]:
    """`=head2` sections of one POD page; other commands (=head1, =over, =item, =back, =cut) are dropped."""
    heading: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("=head2 "):
            if heading is not None:
                yield pod_plain(heading), pod_plain("\n".join(body).strip())
            heading, body = line[len("=head2 ") :].strip(), []
        elif line.startswith("=head1 "):
            if heading is not None:
                yield pod_plain(heading), pod_plain("\n".join(body).strip())
            heading, body = None, []
        elif heading is not None and not line.startswith("="):
            body.append(line)
    if heading is not None:
        yield pod_plain(heading), pod_plain("\n".join(body).strip())


def perlfaq_sections(root: Path) -> Iterator[tuple[str, Section]]:
    for page in sorted(root.glob("usr/share/perl/*/pod/perlfaq[1-9].pod")):
        for section in pod_sections(page.read_text(encoding="utf-8")):
            yield page.stem, section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where the BEIR folder is written (keep it out of the repo)")
    parser.add_argument("--debs", type=Path, help="folder holding perl-doc_*.deb (default: apt-get download into a temp folder)")
    args = parser.parse_args()
    build_from_debs(("perl-doc",), perlfaq_sections, args.out, args.debs)


if __name__ == "__main__":
    main()
