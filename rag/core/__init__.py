"""The ground floor: types and helpers every layer above may use, importing nothing above them.

- `rag.core.chat`: chat messages and the `ChatModel` contract (used by rewriting, reranking and answering);
- `rag.core.access`: reader groups and `Access` (who is reading);
- `rag.core.progress`: the `Progress` sink long jobs report to;
- `rag.core.bundled` and `rag.core.tokens`: the bundled model's identity and tokenizer, and token counting;
- `rag.core.paths`: the path globs of filters and group mappings;
- `rag.core.registry`: named implementations of each pluggable kind (built-in, entry point or dotted path).

`rag.types` (documents, chunks, answers) and `rag.errors` are on this floor too.
"""
