"""JSON Lines: one document per record (e.g. a BEIR corpus.jsonl); the record's id is kept."""

from __future__ import annotations

import json
from pathlib import Path

from rag.config import JsonlConfig
from rag.core.access import parse_groups
from rag.errors import LoadError
from rag.ingest.loaders.text import decode_text
from rag.types import Document, LoadedSource, Section

_MAX_BAD_LINES_LISTED = 5


def load_jsonl(path: Path, fields: JsonlConfig) -> LoadedSource:
    text, notes = decode_text(path.read_bytes())
    documents: list[Document] = []
    seen: set[str] = set()
    bad: list[str] = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {line_number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            bad.append(f"line {line_number}: not a JSON object")
            continue
        doc_id = record.get(fields.id_field)
        body = record.get(fields.text_field)
        if doc_id is None or not isinstance(body, str):
            bad.append(f"line {line_number}: missing {fields.id_field!r} or text field {fields.text_field!r}")
            continue
        doc_id = str(doc_id)
        if doc_id in seen:
            bad.append(f"line {line_number}: duplicate id {doc_id!r} (first one kept)")
            continue
        seen.add(doc_id)
        try:
            groups = parse_groups(record.get(fields.groups_field)) if fields.groups_field else ()
        except ValueError as exc:  # never ingest a record whose permissions cannot be read
            bad.append(f"line {line_number}: field {fields.groups_field!r}: {exc}")
            continue
        title = str(record.get(fields.title_field) or "").strip()
        document = _record_document(doc_id, title, body.strip())
        document.groups = groups
        documents.append(document)
    if bad:
        listed = "; ".join(bad[:_MAX_BAD_LINES_LISTED]) + (f"; ... {len(bad) - _MAX_BAD_LINES_LISTED} more" if len(bad) > _MAX_BAD_LINES_LISTED else "")
        if not documents:
            raise LoadError(f"no usable records: {listed} (set ingest.jsonl.id_field / text_field to match your records)")
        notes.append(f"{len(bad)} record(s) skipped: {listed}")
    if not documents:
        raise LoadError("the JSON Lines file has no records")
    return LoadedSource("jsonl", documents, notes)


def _record_document(doc_id: str, title: str, body: str) -> Document:
    """Title then body; the title doubles as the heading of the record's single section."""
    if not title:
        return Document(doc_id=doc_id, text=body)
    text = f"{title}\n\n{body}" if body else title
    return Document(doc_id=doc_id, text=text, title=title, sections=[Section(0, len(text), (title,))])
