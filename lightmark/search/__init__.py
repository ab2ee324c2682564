"""The architecture search on Optuna: space, budget, objective, storage, workers, resume, and replay on
tabular benchmarks (docs/architecture.md, docs/search.md)."""
