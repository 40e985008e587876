"""The bytes of a registry model: the heads alone, or the heads and a fine-tuned encoder.

A heads-only model stays the heads' own state bytes, so models saved before fine-tuning
existed load unchanged. A model whose encoder was fine-tuned (`training.finetune`) is a
header line then an .npz archive holding both: the heads' bytes, and the encoder's weights
as fp16 arrays (~45 MB for MiniLM-L6), since the embeddings the heads were fitted on can
only be reproduced with those weights. Plain arrays, like the heads: nothing executable
on load. Numpy only; the encoder turns the arrays into tensors itself.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

MAGIC = b"triage-bot/heads+encoder/1\n"
_HEADS = "heads"
_ENCODER = "encoder:"  # prefix of the encoder's state-dict keys in the archive


def pack(heads: bytes, encoder: Mapping[str, np.ndarray] | None) -> bytes:
    """Registry bytes for heads (their state bytes) and, if fine-tuned, encoder weights."""
    if encoder is None:
        return heads
    arrays: dict[str, Any] = {_HEADS: np.frombuffer(heads, dtype=np.uint8)}
    arrays |= {_ENCODER + key: np.asarray(value) for key, value in encoder.items()}
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    np.savez(buffer, **arrays)  # uncompressed: fp16 weights barely compress, and load fast
    return buffer.getvalue()


def unpack(data: bytes) -> tuple[bytes, dict[str, np.ndarray] | None]:
    """(heads state bytes, encoder state or None) from registry bytes of either form."""
    if not data.startswith(MAGIC):
        return data, None
    try:
        with np.load(io.BytesIO(data[len(MAGIC) :]), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as exc:
        raise ValueError("damaged model weights: retrain with `triage-bot train`") from exc
    if _HEADS not in arrays:
        raise ValueError("damaged model weights (no heads): retrain with `triage-bot train`")
    encoder = {
        key.removeprefix(_ENCODER): value
        for key, value in arrays.items()
        if key.startswith(_ENCODER)
    }
    return arrays[_HEADS].tobytes(), encoder


def half(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A torch state dict as numpy arrays, floating ones in fp16: half the bytes to store,
    and what every process loads (so the trainer scores exactly what the bots will serve)."""
    out = {}
    for key, value in state.items():
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.half()
        out[key] = tensor.numpy()
    return out


def digest(state: Mapping[str, np.ndarray]) -> str:
    """sha256 of encoder weights, so a registry entry can say which weights it embeds with."""
    hashed = hashlib.sha256()
    for key in sorted(state):
        hashed.update(key.encode())
        hashed.update(np.ascontiguousarray(state[key]).tobytes())
    return hashed.hexdigest()
