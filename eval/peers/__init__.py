"""The three systems of `eval/bench_peers.py`, each behind the same two calls: `ingest` and `open_search`."""
