"""JSON Schema: checking schemas callers send, and answers against them."""
