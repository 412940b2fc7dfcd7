"""The answer policy of creator agents: signals, the six paths, canonical answers and escalations."""
