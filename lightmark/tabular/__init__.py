"""Does a search pay? Tabular benchmarks (every architecture of a space trained, with its learning curve),
search strategies replayed on them in seconds, zero-cost proxies scored against them, and the same
comparison trained for real (docs/architecture.md, docs/search.md)."""
