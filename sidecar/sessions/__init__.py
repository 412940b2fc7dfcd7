"""Conversation sessions: active persona, history and switch history, in memory or in Redis."""
