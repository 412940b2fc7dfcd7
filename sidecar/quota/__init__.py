"""Quotas and rate limits: policy evaluation, windows, the reserve/settle algorithm, stores, signals."""
