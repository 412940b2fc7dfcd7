"""State stores shared by sidecars: the one Redis client factory and its typed errors."""
