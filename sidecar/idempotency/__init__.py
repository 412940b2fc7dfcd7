"""Idempotent retries of unary Generate: one tenant's request_id answers once within a window."""
