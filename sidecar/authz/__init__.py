"""Who may call which service and method, for which tenants."""
