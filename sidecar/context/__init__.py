"""Context-window management: token counting, trimming, summaries of what was dropped."""
