"""pathloop.server — the central aggregation side (flwr + numpy only)."""
