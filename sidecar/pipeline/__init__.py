"""One layer per file, in pipeline order; sidecar/app.py composes them."""
