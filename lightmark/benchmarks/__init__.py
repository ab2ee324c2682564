"""benchmarks stage of lightmark (see DESIGN.md)."""
