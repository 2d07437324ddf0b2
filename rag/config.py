"""The pipeline configuration: one validated model, built-in defaults, YAML file, env and CLI overrides.

Precedence (highest first): `--set section.key=value` on the command line, `RAG_SECTION__KEY`
environment variables, the YAML file (`--config`, `$RAG_CONFIG`, or `./rag.yaml`), built-in defaults.

Pluggable sections (embedding, vector_store, rerank, llm, ingest.loaders) are discriminated unions: a built-in
name (`rerank.kind: endpoint`) selects the built-in model with its documented keys; any other name is a plug-in
(a registered name, an entry point or a dotted path, see `rag.core.registry`) whose own settings go under
`options`. Code that reads such a section accepts the shared base class (`RerankBase`, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from rag.core.bundled import INT8_RECIPE, INT8_RECIPES
from rag.core.registry import CHAT_MODELS, EMBEDDERS, LOADERS, RERANKERS, VECTOR_STORES, Registry
from rag.errors import RagError

DEFAULT_CONFIG_FILE = "rag.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


BUILTIN, PLUGIN = "builtin", "plugin"  # the tags of each pluggable section's two variants


def _builtin_or_plugin(builtin: type[BaseModel], field: str) -> Discriminator:
    """Tag a section's raw value: a name the built-in model's Literal allows validates against that model,
    anything else is a plug-in."""
    builtins = get_args(builtin.model_fields[field].annotation)
    default = builtin.model_fields[field].default

    def tag(value: Any) -> str:
        name = value.get(field, default) if isinstance(value, dict) else getattr(value, field, default)
        return BUILTIN if name in builtins else PLUGIN

    return Discriminator(tag)


class _Plugin(_Section):
    """What every plug-in variant adds: its own settings, handed to it unvalidated (it validates them), and a check
    that its name resolves (without importing it: a dotted path is only checked for its shape)."""

    registry: ClassVar[Registry[Any]]
    name_field: ClassVar[str]
    options: dict[str, Any] = Field(default_factory=dict, description="The plug-in's own settings (see its documentation).")

    @model_validator(mode="after")
    def _resolvable(self) -> "_Plugin":
        name = getattr(self, self.name_field)
        if not self.registry.knows(name):
            raise ValueError(self.registry.unknown(name))
        return self

    def options_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.options, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ChunkingConfig(_Section):
    """How documents are cut into retrievable chunks; sizes are in embedding-model tokens."""

    strategy: Literal["auto", "heading", "recursive"] = Field(
        "auto",
        description="heading: split within heading sections; recursive: ignore headings; "
        "auto: heading-aware when the document has headings.",
    )
    size: int = Field(
        250, ge=16, le=8192, description="Maximum chunk size in tokens (without the model's 2 special tokens)."
    )
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "ChunkingConfig":
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


_PROVIDER_HELP = (
    "local: bundled all-MiniLM-L6-v2 (ONNX); static: the fast profile, a static WordLlama model (the `fast` extra, see "
    "docs/embeddings.md); openai: any /v1/embeddings endpoint; other names: a plug-in."
)


class EmbeddingBase(_Section):
    """Which model turns text into vectors (the keys every embedder section has)."""

    provider: str = Field("local", description=_PROVIDER_HELP)
    precision: Literal["int8", "fp32"] = Field(
        "int8",
        description="Local model: int8 = int8 matmuls, built once from the bundled model into model_cache_dir "
        "(about half the CPU per text); fp32 = the bundled file as shipped (int8 storage, fp32 compute).",
    )
    runtime: Literal["onnxruntime", "openvino"] = Field(
        "onnxruntime",
        description="Local model: onnxruntime (precision and int8_recipe apply) or openvino (the `openvino` extra: "
        "runs the bundled file, bfloat16 where the CPU has it; faster, see docs/embeddings.md).",
    )
    int8_recipe: str | None = Field(
        None,
        description="Local int8 model: how it is built (see docs/embeddings.md); unset = the current recipe. "
        "An index records the recipe it was built with and its queries keep using it.",
    )
    model_cache_dir: Path | None = Field(
        None, description="Local model: where the int8 build is kept; unset = $XDG_CACHE_HOME/rag/models (~/.cache/rag/models)."
    )
    model: str = Field("all-MiniLM-L6-v2", description="Model name sent to the endpoint (provider openai).")
    base_url: str | None = Field(None, description="Endpoint base URL, e.g. http://localhost:8000/v1 for vLLM.")
    api_key: SecretStr | None = Field(None, description="API key; falls back to $OPENAI_API_KEY.")
    batch_size: int | None = Field(
        None, ge=1, le=2048, description="Texts per model call; unset = 8 for local (fastest on CPU), 64 for static and endpoints."
    )
    max_tokens: int = Field(256, ge=8, description="Local model: tokens kept per text (longer text is truncated).")
    threads: int = Field(0, ge=0, description="Local model: CPU threads (0 = all cores).")
    timeout_s: float = Field(60.0, gt=0, description="Endpoint request timeout in seconds.")
    max_retries: int = Field(3, ge=0, description="Endpoint retries on transient errors.")

    @field_validator("int8_recipe")
    @classmethod
    def _known_recipe(cls, recipe: str | None) -> str | None:
        if recipe is not None and recipe not in INT8_RECIPES:
            raise ValueError(f"unknown int8_recipe {recipe!r}: use one of {', '.join(INT8_RECIPES)}")
        return recipe

    def effective_int8_recipe(self) -> str:
        return self.int8_recipe or INT8_RECIPE

    def effective_batch_size(self) -> int:
        return self.batch_size or (8 if self.provider == "local" else 64)

    def model_id(self) -> str:
        """A stable identity for cache keys and fingerprints: provider, model and where it is served."""
        if self.provider == "local" and self.runtime == "openvino":
            return f"local:all-MiniLM-L6-v2-openvino:{self.max_tokens}"
        if self.provider == "local" and self.precision == "fp32":
            return f"local:all-MiniLM-L6-v2-int8:{self.max_tokens}"  # the bundled file's id since before int8 compute
        if self.provider == "local":
            return f"local:all-MiniLM-L6-v2-{self.effective_int8_recipe()}:{self.max_tokens}"
        if self.provider == "static":
            return "static:wordllama-l2_supercat-256"  # reads every token: max_tokens does not change its vectors
        return f"openai:{self.base_url or 'default'}:{self.model}"


class EmbeddingConfig(EmbeddingBase):
    """A built-in embedder."""

    provider: Literal["local", "static", "openai"] = Field("local", description=_PROVIDER_HELP)


class PluginEmbeddingConfig(_Plugin, EmbeddingBase):
    """An embedder from a plug-in: `provider` names it (docs/extending.md)."""

    registry, name_field = EMBEDDERS, "provider"
    provider: str

    def model_id(self) -> str:
        return f"{self.provider}:{self.model}:{self.options_digest()}"


EmbeddingSection = Annotated[
    Union[Annotated[EmbeddingConfig, Tag(BUILTIN)], Annotated[PluginEmbeddingConfig, Tag(PLUGIN)]],
    _builtin_or_plugin(EmbeddingConfig, "provider"),
]


class VectorStoreBase(_Section):
    """Where chunk vectors live: embedded Chroma under the index folder, a Chroma server, or a plug-in."""

    kind: str = Field("chroma", description="chroma: embedded under the index folder, or the server at `url`; other names: a plug-in.")
    url: str | None = Field(None, description="Chroma server URL, e.g. http://127.0.0.1:8000; unset = embedded.")
    collection: str | None = Field(None, description="Collection name; unset = derived from the index id.")


class VectorStoreConfig(VectorStoreBase):
    """The built-in vector store (Chroma)."""

    kind: Literal["chroma"] = Field("chroma", description="chroma: embedded under the index folder, or the server at `url`; other names: a plug-in.")


class PluginVectorStoreConfig(_Plugin, VectorStoreBase):
    """A vector store from a plug-in: `kind` names it (docs/extending.md)."""

    registry, name_field = VECTOR_STORES, "kind"
    kind: str


VectorStoreSection = Annotated[
    Union[Annotated[VectorStoreConfig, Tag(BUILTIN)], Annotated[PluginVectorStoreConfig, Tag(PLUGIN)]],
    _builtin_or_plugin(VectorStoreConfig, "kind"),
]


class BM25Config(_Section):
    """The lexical index kept beside the vectors (bm25s)."""

    k1: float = Field(1.2, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    stopwords: str | None = Field("en", description="Stopword list name understood by bm25s, or null.")
    stemmer: str | None = Field("english", description="PyStemmer language, or null for no stemming.")


class JsonlConfig(_Section):
    """Field names of JSON Lines records (defaults fit a BEIR corpus.jsonl)."""

    id_field: str = "_id"
    title_field: str = "title"
    text_field: str = "text"
    groups_field: str | None = Field(
        "groups",
        description="Field holding a record's reader groups (list or comma-separated string); it overrides "
        "--groups for that record. null = ignore.",
    )


class LoaderBase(_Section):
    """The loader of one file type (a key of `ingest.loaders`)."""

    kind: str = Field(description="A built-in loader (pdf, docx, html, markdown, text, jsonl) or a plug-in.")
    extensions: list[str] = Field(
        default_factory=list, description="File name endings read as this type, e.g. ['.rtf'] (before the built-in table)."
    )

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, extensions: list[str]) -> list[str]:
        if any(not e.startswith(".") or e != e.strip() for e in extensions):
            raise ValueError("extensions start with a dot, e.g. ['.rtf']")
        return [e.lower() for e in extensions]


class LoaderConfig(LoaderBase):
    """A built-in loader, e.g. `text: markdown` reads plain text files as Markdown."""

    kind: Literal["pdf", "docx", "html", "markdown", "text", "jsonl"]


class PluginLoaderConfig(_Plugin, LoaderBase):
    """A loader from a plug-in: `kind` names it (docs/extending.md)."""

    registry, name_field = LOADERS, "kind"


LoaderSection = Annotated[
    Union[Annotated[LoaderConfig, Tag(BUILTIN)], Annotated[PluginLoaderConfig, Tag(PLUGIN)]],
    _builtin_or_plugin(LoaderConfig, "kind"),
]


class IngestLimits(_Section):
    """Per-file bounds: a file past one fails fast, with a reason naming the setting, and the run goes on.

    Files are read in a worker process, so a loader that hangs or balloons is stopped without stopping the run.
    """

    max_chars: int = Field(20_000_000, ge=1, description="Extracted text per file, in characters.")
    max_chunks: int = Field(100_000, ge=1, description="Chunks per file.")
    max_unzipped_mb: float = Field(
        256.0, gt=0, description="ZIP-based formats (DOCX): total declared size of the package's parts once unpacked."
    )
    max_zip_ratio: float = Field(
        100.0, gt=1, description="ZIP-based formats: unpacked / packed size of any part over 1 MB unpacked (zip bombs)."
    )
    max_xml_part_mb: float = Field(
        32.0, gt=0, description="ZIP-based formats: unpacked size of one XML part (word/document.xml), parsed in memory."
    )
    max_depth: int = Field(256, ge=8, description="HTML nesting depth (XML parts are parsed with libxml2's own limit of 256).")
    max_pages: int = Field(5_000, ge=1, description="PDF pages.")
    timeout_s: float = Field(120.0, gt=0, description="Wall time to read and chunk one file; the reader is stopped after it.")
    max_memory_mb: int = Field(
        1536, ge=128, description="Memory (resident) of the process reading a file; it is stopped past this."
    )
    isolate: bool = Field(
        True,
        description="Read files in a worker process (enforces timeout_s and max_memory_mb); false reads in-process.",
    )


class IngestConfig(_Section):
    """Which files are read and how."""

    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are reported and skipped.")
    include_hidden: bool = Field(False, description="Also read files and folders whose name starts with '.'.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of paths to leave out.")
    write_batch_chunks: int = Field(2048, ge=1, description="Chunks embedded and written per batch.")
    limits: IngestLimits = Field(default_factory=IngestLimits)
    jsonl: JsonlConfig = Field(default_factory=JsonlConfig)
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Reader groups by path glob, e.g. {'data/hr/**': [hr]}; used when `rag ingest --groups` is not given.",
    )
    loaders: dict[str, LoaderSection] = Field(
        default_factory=dict,
        description="Loaders by file type: a new type ({rtf: {kind: my_pkg:RtfLoader, extensions: [.rtf]}}) or another "
        "loader for a built-in one ({pdf: my_pkg:PdfLoader}); unset types use the built-in loaders.",
    )

    @field_validator("loaders", mode="before")
    @classmethod
    def _names_are_loaders(cls, loaders: Any) -> Any:
        """`{rtf: my_pkg:RtfLoader}` is short for `{rtf: {kind: my_pkg:RtfLoader}}`."""
        if isinstance(loaders, dict):
            return {file_type: {"kind": spec} if isinstance(spec, str) else spec for file_type, spec in loaders.items()}
        return loaders


class RetrievalConfig(_Section):
    """Hybrid search: dense + BM25 candidates, fused into one ranking."""

    dense_top_k: int = Field(100, ge=0, le=1000, description="Candidates from the vector store (0 disables dense).")
    bm25_top_k: int = Field(100, ge=0, le=1000, description="Candidates from BM25 (0 disables BM25).")
    fusion: Literal["convex", "rrf"] = Field("convex", description="convex: weighted sum of normalised scores; rrf: reciprocal rank fusion.")
    dense_weight: float = Field(0.5, ge=0, le=1, description="convex: weight of the dense score (BM25 gets 1 - this).")
    normalization: Literal["theoretical", "minmax", "zscore"] = Field(
        "theoretical",
        description="convex: per-query score normalisation. theoretical: score / the list's best score, from the "
        "scorer's floor 0 (a flat, uninformative list stays flat); minmax: onto [0, 1] over the list's own range; "
        "zscore: mean 0, spread 1.",
    )
    rrf_k: int = Field(60, ge=1, description="rrf: the k constant.")
    cue_weight: float = Field(
        0.2,
        ge=0,
        le=1,
        description="convex: boost of the fused top 30 by the share of the question's multi-word capitalised names "
        "and numbers a chunk contains verbatim (0 = off).",
    )
    top_k: int = Field(8, ge=1, le=200, description="Chunks passed on to reranking / context assembly.")


class RewriteConfig(_Section):
    """Query rewriting; each step needs an LLM and is skipped (with a note in the trace) without one."""

    condense: bool = Field(True, description="Rewrite a follow-up plus chat history into a standalone question.")
    multi_query: int = Field(0, ge=0, le=8, description="Extra paraphrased queries whose results are fused (0 = off).")
    hyde: bool = Field(False, description="Also search with the embedding of a hypothetical answer (HyDE).")


class RerankBase(_Section):
    """Second-stage reranking of the fused candidates (the keys every reranker section has)."""

    kind: str = Field("none", description="Reranker to use: none, cross-encoder, endpoint, llm, or a plug-in.")
    model_path: str | None = Field(None, description="cross-encoder: local folder of a sentence-transformers CrossEncoder.")
    base_url: str | None = Field(None, description="endpoint: base URL serving POST /rerank (vLLM, TEI, Cohere-style).")
    model: str | None = Field(None, description="endpoint: model name to send.")
    api_key: SecretStr | None = Field(None, description="endpoint: bearer token.")
    candidates: int = Field(30, ge=1, le=200, description="How many fused candidates are reranked.")
    window: int = Field(10, ge=2, description="llm: sliding window size (RankGPT-style).")
    step: int = Field(5, ge=1, description="llm: sliding window step.")
    timeout_s: float = Field(60.0, gt=0, description="endpoint: request timeout in seconds.")
    max_retries: int = Field(2, ge=0, description="endpoint: retries on connection errors, 429 and 5xx.")


class RerankConfig(RerankBase):
    """A built-in reranker (or none)."""

    kind: Literal["none", "cross-encoder", "endpoint", "llm"] = Field(
        "none", description="Reranker to use: none, cross-encoder, endpoint, llm, or a plug-in."
    )


class PluginRerankConfig(_Plugin, RerankBase):
    """A reranker from a plug-in: `kind` names it (docs/extending.md)."""

    registry, name_field = RERANKERS, "kind"
    kind: str


RerankSection = Annotated[
    Union[Annotated[RerankConfig, Tag(BUILTIN)], Annotated[PluginRerankConfig, Tag(PLUGIN)]],
    _builtin_or_plugin(RerankConfig, "kind"),
]


class ContextConfig(_Section):
    """How retrieved chunks become the numbered passages given to the generator."""

    max_tokens: int = Field(1500, ge=64, description="Token budget for all passages together.")
    max_passages: int = Field(6, ge=1, le=50, description="Most passages given to the generator.")
    neighbours: int = Field(0, ge=0, le=5, description="Also include this many adjacent chunks on each side.")
    min_relative_score: float = Field(
        0.0, ge=0, le=1, description="Drop chunks scoring below this fraction of the best chunk's score."
    )


class LLMBase(_Section):
    """An OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server), a local GGUF model, or a plug-in."""

    provider: str = Field("none", description="none: offline, no LLM; openai; llamacpp; other names: a plug-in.")
    base_url: str | None = Field(None, description="openai: endpoint base URL, e.g. http://localhost:8000/v1.")
    api_key: SecretStr | None = Field(None, description="openai: API key; falls back to $OPENAI_API_KEY.")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint.")
    gguf_path: str | None = Field(None, description="llamacpp: path to a GGUF chat model.")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0)


class LLMConfig(LLMBase):
    """A built-in chat model (or none)."""

    provider: Literal["none", "openai", "llamacpp"] = Field(
        "none", description="none: offline, no LLM; openai; llamacpp; other names: a plug-in."
    )


class PluginLLMConfig(_Plugin, LLMBase):
    """A chat model from a plug-in: `provider` names it (docs/extending.md)."""

    registry, name_field = CHAT_MODELS, "provider"
    provider: str


LLMSection = Annotated[
    Union[Annotated[LLMConfig, Tag(BUILTIN)], Annotated[PluginLLMConfig, Tag(PLUGIN)]],
    _builtin_or_plugin(LLMConfig, "provider"),
]


class GenerationConfig(_Section):
    """How the answer is written."""

    mode: Literal["auto", "extractive", "llm"] = Field(
        "auto", description="auto: the LLM when one is configured, else the offline extractive answerer."
    )
    max_sentences: int = Field(3, ge=1, le=10, description="extractive: most sentences quoted.")
    min_support: float = Field(
        0.28, ge=0, le=1,
        description="extractive: evidence below this score means 'the documents do not say' (calibrated on dev sets: docs/answers.md).",
    )
    prompt: str = Field("answer", description="Prompt template name in prompts/ for the LLM answerer.")
    extractive_top_k: int = Field(
        16, ge=1, le=200,
        description="extractive: chunks the offline answerer reads (at least retrieval.top_k); the passages shown stay "
        "those of retrieval.top_k plus any further passage the answer cites (docs/answers.md, round 3).",
    )
    extractive_max_tokens: int = Field(3000, ge=64, description="extractive: token budget of the passages the offline answerer reads.")
    extractive_neighbours: int = Field(
        1, ge=0, le=5, description="extractive: adjacent chunks on each side the offline answerer also reads (a short document whole)."
    )


class ServeConfig(_Section):
    """`rag serve`: request limits and how many questions are answered at once."""

    max_body_kb: int = Field(512, ge=1, description="Largest request body accepted (413 above it).")
    max_question_chars: int = Field(4000, ge=1, description="Longest question or chat message accepted.")
    max_top_k: int = Field(50, ge=1, le=200, description="Highest top_k a request may ask for.")
    request_timeout_s: float = Field(120.0, gt=0, description="Time limit of one /v1/ask or /v1/retrieve request (504 after).")
    pipelines: int = Field(4, ge=1, le=64, description="Questions answered at the same time; more requests wait.")
    queue_timeout_s: float = Field(30.0, gt=0, description="How long a request waits for a free pipeline (503 after).")
    ingest_roots: list[str] = Field(
        ["."],
        description="Folders whose files POST /v1/ingest may read by server path (symlinks resolved; relative = the server's working "
        "directory). [] = no server paths: only documents sent in the request and uploads.",
    )
    trusted_user_header: str | None = Field(
        None, description="SSO: header an authenticating proxy puts the user name in (e.g. X-Forwarded-User); unset = off. See docs/ui.md."
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"], description="Addresses or networks (CIDR) whose trusted_user_header is believed; others are ignored."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network such as 10.0.0.0/8") from None
        return value


class RagConfig(BaseSettings):
    """The whole pipeline configuration. `rag config` prints the effective values."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="forbid")

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    embedding: EmbeddingSection = Field(default_factory=EmbeddingConfig)
    vector_store: VectorStoreSection = Field(default_factory=VectorStoreConfig)
    bm25: BM25Config = Field(default_factory=BM25Config)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    rewrite: RewriteConfig = Field(default_factory=RewriteConfig)
    rerank: RerankSection = Field(default_factory=RerankConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    llm: LLMSection = Field(default_factory=LLMConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @model_validator(mode="after")
    def _chunks_fit_the_local_model(self) -> "RagConfig":
        window = self.embedding.max_tokens - 2  # [CLS] and [SEP] take two places
        if self.embedding.provider == "local" and self.chunking.size > window:
            raise ValueError(
                f"chunking.size ({self.chunking.size}) exceeds what the local embedding model reads "
                f"({window} tokens = embedding.max_tokens - 2): the end of each chunk would be ignored"
            )
        return self

    def public_dict(self) -> dict[str, Any]:
        """The config as plain data with secrets masked: safe to print and to record with a run."""
        return json.loads(self.model_dump_json())

    def indexing_fingerprint(self, file_type: str) -> str:
        """Hash of every setting that changes the chunks or vectors of a file of this type."""
        parts: dict[str, Any] = {
            "chunking": self.chunking.model_dump(),
            "embedding": self.embedding.model_id(),
        }
        if file_type == "jsonl":
            parts["jsonl"] = self.ingest.jsonl.model_dump(exclude={"groups_field"})  # groups change who reads, not chunks
        if file_type in self.ingest.loaders:  # another loader reads this type: its files are read again
            parts["loader"] = self.ingest.loaders[file_type].model_dump(mode="json")
        elif file_type in LOADER_REVISIONS:  # the built-in loader's text changed: its files are read again
            parts["loader_revision"] = LOADER_REVISIONS[file_type]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


# Bumped when a loader's text changes, so files of that type are read again on the next ingest
# (pdf 2: running page headers and footers are left out).
LOADER_REVISIONS = {"pdf": 2}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `a.b=value` strings into a nested dict; values are parsed as YAML scalars (so 1, true, null work)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RagError(f"bad --set {pair!r}", "write it as section.key=value, e.g. --set chunking.size=200")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return result


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RagError(f"config file {path} does not exist", "check the path given to --config or $RAG_CONFIG") from None
    except yaml.YAMLError as exc:
        raise RagError(f"config file {path} is not valid YAML: {exc}", "fix the syntax at the line shown") from None
    if not isinstance(data, dict):
        raise RagError(f"config file {path} must hold a mapping of sections", "see `rag config` for the layout")
    return data


def resolve_config_path(explicit: Path | None) -> Path | None:
    """The config file in effect: --config, then $RAG_CONFIG, then ./rag.yaml if present."""
    if explicit is not None:
        return explicit
    if os.environ.get("RAG_CONFIG"):
        return Path(os.environ["RAG_CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> RagConfig:
    """Build the effective config with the documented precedence; raise RagError on invalid values."""
    file_data = _read_yaml(path) if path is not None else {}
    cli_data = parse_overrides(overrides or [])

    class _Configured(RagConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, file_data))

    try:
        configured = _Configured(**cli_data)
    except ValidationError as exc:
        raise RagError(f"invalid configuration:\n{_format_validation(exc)}", "see `rag config` for valid keys") from None
    return RagConfig.model_construct(**{name: getattr(configured, name) for name in RagConfig.model_fields})


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if p not in (BUILTIN, PLUGIN))  # a union's tags mean nothing to users
        lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
