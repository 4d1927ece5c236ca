"""Upstream test cluster (issue 9): pinned upstream builds started on loopback."""
