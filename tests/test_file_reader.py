"""The worker process that reads files (rag.ingest.worker.FileReader): started early, stopped cleanly."""

from __future__ import annotations

from pathlib import Path

from rag.config import load_config
from rag.ingest.detect import detect_type
from rag.ingest.loaders import loader_factory
from rag.ingest.worker import FileReader, ReadTask


def test_a_reader_started_early_reads_in_its_child_which_exits_cleanly_when_closed(tmp_path: Path) -> None:
    config = load_config()
    path = tmp_path / "note.txt"
    path.write_text("The release train leaves every second Tuesday.\n")
    file_type = detect_type(path, {})
    factory, section = loader_factory(file_type, config.ingest)
    task = ReadTask(path=str(path), doc_id="note.txt", source=str(path), file_type=file_type, factory=factory, section=section,
                    ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint(file_type))
    with FileReader(config.ingest) as reader:
        reader.start()
        child = reader._process
        assert child is not None and child.is_alive()
        result = reader.read(task)
        assert reader._process is child  # the started child read the file: no second one
    assert [c.text for c in result.chunks] == ["The release train leaves every second Tuesday."]
    assert child.exitcode == 0  # told to stop, it exited on its own (not killed)
