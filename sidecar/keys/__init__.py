"""User-supplied provider keys under envelope encryption: format, backends, cache, record store."""
