"""Points <-> heatmaps: the codecs that encode and decode them, and the losses on heatmaps
(docs/architecture.md)."""
