"""Personas: the registry loaded from configuration and persona files, and Switch command matching."""
