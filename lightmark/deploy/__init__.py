"""What ships: export to ONNX / TorchScript with verification, and running a checkpoint or an exported
file on images (docs/architecture.md)."""
