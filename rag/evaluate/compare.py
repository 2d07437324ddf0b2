"""`rag eval compare`: per-metric paired deltas between two runs (or two configs of one run).

For each metric both sides have, queries are matched by query_id; a query whose value is None on either
side (a judge failure) is skipped for that metric and counted in `skipped`. Every metric is taken as
higher-is-better: `better` counts queries where B beats A.

Significance: a paired sign-flip permutation test on the per-query differences (two-sided, statistic
|mean difference|; exact over all 2^n sign patterns when n <= 16, else `permutations` random flips with a
fixed seed and the +1 correction), and a percentile bootstrap CI of the mean difference (fixed seed).
The same inputs always give the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluate.report import Run, load_run
from rag.evaluate.runs import QUERY_KEY
from rag.evaluate.stats import bootstrap_ci

EXACT_LIMIT = 16  # up to 2^16 sign patterns are enumerated exactly
TIE = 1e-12


def paired_permutation_p(diffs: Any, permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip test of mean(diffs) == 0."""
    import numpy as np

    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n == 0:
        return 1.0
    observed = abs(d.mean())
    tolerance = TIE * max(1.0, observed)
    if n <= EXACT_LIMIT:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        stats = np.abs(patterns @ d) / n
        return float(np.mean(stats >= observed - tolerance))
    rng = np.random.default_rng(seed)
    hits, batch = 0, _batch(n)
    for start in range(0, permutations, batch):  # batches bound memory for large n
        size = min(batch, permutations - start)
        signs = rng.choice((-1.0, 1.0), size=(size, n))
        hits += int(np.sum(np.abs(signs @ d) / n >= observed - tolerance))
    return (hits + 1) / (permutations + 1)


def _batch(n: int) -> int:
    return max(1, min(2000, 2_000_000 // max(n, 1)))


def _pick_config(run: Run, wanted: str | None, label: str, default_index: int = 0) -> str:
    if wanted is not None:
        if wanted not in run.configs:
            raise RagError(f"config {wanted!r} not in run {run.folder}", f"its configs: {', '.join(run.configs) or 'none'}")
        return wanted
    if len(run.configs) == 1:
        return run.configs[0]
    if not run.configs:
        raise RagError(f"run {run.folder} has no configs", "pass a folder written by `rag eval ... --out DIR`")
    raise RagError(f"run {run.folder} has several configs ({', '.join(run.configs)})", f"choose one with --config-{label}")


def compare_runs(
    run_a: Path,
    run_b: Path | None = None,
    config_a: str | None = None,
    config_b: str | None = None,
    permutations: int = 10_000,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare config A of run A with config B of run B (run B defaults to run A: two configs of one run)."""
    import numpy as np

    a = load_run(run_a)
    same = run_b is None  # two configs of one run
    b = a if run_b is None or Path(run_b).resolve() == Path(run_a).resolve() else load_run(run_b)
    if same:
        if config_a is None and config_b is None and len(a.configs) == 2:
            config_a, config_b = a.configs
        if config_a is None or config_b is None:
            raise RagError("comparing within one run needs two configs", f"pass --config-a and --config-b (its configs: {', '.join(a.configs)})")
    elif config_b is None and config_a is not None and config_a in b.configs and len(b.configs) > 1:
        config_b = config_a  # same config name on both sides
    name_a, name_b = _pick_config(a, config_a, "a"), _pick_config(b, config_b, "b")

    warnings: list[str] = []
    if a.fingerprint and b.fingerprint and a.fingerprint != b.fingerprint:
        warnings.append(f"the runs used different datasets (fingerprints {a.fingerprint} and {b.fingerprint}); only queries with the same id are compared")
    elif not same and (a.fingerprint is None or b.fingerprint is None):
        warnings.append("a run records no dataset fingerprint; cannot check that both used the same dataset")
    if a.kind != b.kind:
        warnings.append(f"comparing a {a.kind} run with a {b.kind} run")

    values_a, values_b = a.per_query(name_a), b.per_query(name_b)
    queries_a = {r[QUERY_KEY] for r in a.rows if r.get("config") == name_a}
    queries_b = {r[QUERY_KEY] for r in b.rows if r.get("config") == name_b}
    shared = queries_a & queries_b
    if not shared:
        warnings.append("the two sides share no query ids: nothing to compare")
    elif queries_a != queries_b:
        warnings.append(f"{len(queries_a - queries_b)} queries only in A and {len(queries_b - queries_a)} only in B are left out")

    metrics: dict[str, Any] = {}
    for metric in [m for m in a.metric_names() if m in values_a and m in values_b]:
        ids = sorted(q for q in shared if q in values_a[metric] and q in values_b[metric])
        xa = np.array([values_a[metric][q] for q in ids], dtype=float)
        xb = np.array([values_b[metric][q] for q in ids], dtype=float)
        diffs = xb - xa
        entry: dict[str, Any] = {"n": len(ids), "skipped": len(shared) - len(ids)}
        if ids:
            interval = bootstrap_ci(diffs, n_resamples=resamples, seed=seed)
            low, high = interval["ci_low"], interval["ci_high"]
            entry.update(
                mean_a=float(xa.mean()), mean_b=float(xb.mean()), delta=float(diffs.mean()), ci_low=low, ci_high=high,
                p_value=paired_permutation_p(diffs, permutations, seed),
                better=int(np.sum(diffs > TIE)), worse=int(np.sum(diffs < -TIE)), tied=int(np.sum(np.abs(diffs) <= TIE)),
            )
        else:
            entry.update(mean_a=None, mean_b=None, delta=None, ci_low=None, ci_high=None, p_value=None, better=0, worse=0, tied=0)
        metrics[metric] = entry
    only = sorted(set(a.metric_names()) ^ set(b.metric_names()))
    if only:
        warnings.append(f"metrics not in both runs are left out: {', '.join(only)}")

    def side(run: Run, config: str) -> dict[str, Any]:
        return {"run": str(run.folder), "config": config, "kind": run.kind, "dataset": run.dataset_name, "fingerprint": run.fingerprint}

    return {
        "a": side(a, name_a),
        "b": side(b, name_b),
        "queries": {"shared": len(shared), "only_a": len(queries_a - queries_b), "only_b": len(queries_b - queries_a)},
        "test": {"kind": "paired sign-flip permutation test (two-sided) + percentile bootstrap 95% CI of the mean delta (B - A)",
                 "permutations": permutations, "exact_up_to_n": EXACT_LIMIT, "bootstrap_resamples": resamples, "seed": seed},
        "metrics": metrics,
        "warnings": warnings,
    }
