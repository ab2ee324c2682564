"""The training engine: the protocol (how a run trains and evaluates), augmentation, the data loaders,
the learning-rate schedule, the trainer, checkpoints and evaluation (docs/architecture.md)."""
