"""Measuring one candidate: size, MACs, latency, memory, deployed files; train + evaluate a spec under a
protocol into one Record; the paper's tables as suites (docs/architecture.md)."""
