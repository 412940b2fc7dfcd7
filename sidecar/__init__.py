"""Orchestrator sidecar: a localhost gRPC proxy that is the one place applications reach LLMs."""

__version__ = "0.1.0"
