"""Integrations: the only place optional dependencies (diffusers, safetensors,
sentence-transformers, matplotlib) are imported, each lazily with an error naming the extra to
install."""
