"""The HTTP API (`rag serve`): API keys, the ASGI app and the pool of pipelines it answers with."""
