"""The response cache: key derivation, the stored answer, and the aiocache-backed store."""
