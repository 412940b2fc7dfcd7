"""Route resolution (and, later, health, breakers and retry policy)."""
