"""The math layer: pure, chunked, jit-safe functions of arrays (no host syncs)."""
