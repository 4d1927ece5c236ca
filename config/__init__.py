"""Configuration: the Enterprise RAG `velero:` block and ragbot's own `ragbot:` block."""
