"""The FAQ dev-set builders in eval/: POD sections become (question, answer) pairs and a BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import load_eval_script

POD = """=head1 NAME

perlfaq0 - a test page

=head1 Data

=head2 How do I round a number?

Use C<sprintf()> or the L<POSIX> module; see L<the manual|perlfunc/sprintf>
and C<< $x->round >>.

=over 4

=item *

B<Never> use int().

=back

=head2 Why don't my E<lt>E<lt>HERE documents work?

Short.

=head1 AUTHOR

Someone.
"""


def test_pod_sections_strip_markup_and_commands() -> None:
    perlfaq = load_eval_script("build_perlfaq_dataset")
    sections = list(perlfaq.pod_sections(POD))
    assert [heading for heading, _ in sections] == ["How do I round a number?", "Why don't my <<HERE documents work?"]
    body = sections[0][1]
    assert "sprintf()" in body and "POSIX" in body and "the manual" in body and "$x->round" in body and "Never use int()" in body
    assert "C<" not in body and "L<" not in body and "=item" not in body and "perlfunc/sprintf" not in body
    assert sections[1][1] == "Short."  # the =head1 AUTHOR section is not part of it


def test_build_writes_questions_against_their_own_answers(tmp_path: Path) -> None:
    perlfaq = load_eval_script("build_perlfaq_dataset")
    sections = [("perlfaq0", s) for s in perlfaq.pod_sections(POD)]
    documents, questions = perlfaq.build(sections, tmp_path)
    corpus = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (tmp_path / "queries.jsonl").read_text().splitlines()]
    qrels = (tmp_path / "qrels" / "test.tsv").read_text().splitlines()
    # the second question has a body under five words: dropped as a document and as a query
    assert (documents, questions) == (1, 1) and queries[0]["text"] == "How do I round a number?"
    assert "round a number" not in corpus[0]["text"]  # the answer is stored without its question
    assert qrels == ["query-id\tcorpus-id\tscore", f"{queries[0]['_id']}\t{corpus[0]['_id']}\t1"]
