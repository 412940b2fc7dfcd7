"""Text embeddings: the `Embedder` protocol, a local default model, and remote providers' adapters."""
