"""Where faces come from: dataset formats on disk, the synthetic generator, the real-photo dev set, and the
contact sheet. Knows nothing of training (docs/architecture.md)."""
