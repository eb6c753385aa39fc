"""Integrations: the only place optional dependencies (diffusers, safetensors, later
sentence-transformers) are imported, each lazily with an error naming the extra to install."""
