"""Logs (and, later, metrics and traces): the only place they are defined."""
