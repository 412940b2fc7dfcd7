"""Provider adapters: pure wire translation plus one I/O method each, over one shared HTTP client."""
