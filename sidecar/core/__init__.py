"""Domain types, the Layer pattern, the error hierarchy and the clock: no I/O, no grpc."""
