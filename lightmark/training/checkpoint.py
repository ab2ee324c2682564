"""Training checkpoints: everything needed to resume a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler and grad-scaler states, the epoch and global step,
the history, the spec and protocol (as dicts, so a checkpoint explains itself), the training mean
shape (for the mean-shape baseline) and the RNG states of python, numpy, torch and CUDA. It is a
plain `torch.save` dict of tensors and builtins, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightmark.atomic import write_with
from lightmark.errors import DataError
from lightmark.models.specs import build_network, spec_from_dict
from lightmark.training.protocol import Protocol

FORMAT_VERSION = 1


# -- RNG state -----------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states as builtins/tensors (weights_only-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _to_builtin(random.getstate()),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_python_state(state["python"]))
    npst = state["numpy"]
    np.random.set_state(
        (npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
         npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_builtin(v) for v in value]
    return value


def _python_state(value: Any) -> Any:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


# -- save / load -----------------------------------------------------------------------------------
def save_checkpoint(path: Path | str, state: dict[str, Any]) -> None:
    """Write `state` (see `make_state`) atomically: a crash leaves the previous file intact."""
    payload = dict(state, format_version=FORMAT_VERSION)
    write_with(path, lambda handle: torch.save(payload, handle))


def make_state(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
    epoch: int,
    global_step: int,
    history: list[dict],
    spec: dict,
    protocol: dict,
    mean_shape: np.ndarray | None = None,
    best: dict | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    """The checkpoint dict; `epoch` is the number of finished epochs (resume starts there)."""
    return {
        "model": _cpu_state_dict(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "global_step": int(global_step),
        "history": list(history),
        "spec": dict(spec),
        "protocol": protocol,
        "mean_shape": None if mean_shape is None else torch.as_tensor(np.asarray(mean_shape, np.float32)),
        "best": dict(best or {}),
        "rng": capture_rng_state(),
        "torch_version": str(torch.__version__),
        "extra": dict(extra or {}),
    }


def _cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies: channels_last/CUDA tensors load anywhere and the file is portable."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint; a missing or unreadable file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's data problem
        raise DataError(f"{path}: not a readable lightmark checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'corrupt'})") from None
    if not isinstance(state, dict) or "model" not in state or "spec" not in state or "protocol" not in state:
        raise DataError(f"{path}: not a lightmark checkpoint (missing model/spec/protocol entries)")
    return state


def checkpoint_spec_protocol(state: dict[str, Any]):
    """(AnySpec, Protocol) stored in a checkpoint."""
    return spec_from_dict(state["spec"]), Protocol.from_dict(state["protocol"])


def load_model(path: Path | str, device: torch.device | str = "cpu"):
    """Rebuild the network stored in a checkpoint, in eval mode on `device`.

    Returns (model, spec, protocol, state)."""
    state = load_checkpoint(path)
    try:
        spec, protocol = checkpoint_spec_protocol(state)
        model = build_network(spec)
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: checkpoint does not match its spec ({str(exc).splitlines()[0][:120]})") from None
    model.to(device).eval()
    return model, spec, protocol, state
