"""Saving and loading checkpoint files.

Saves are atomic: the bytes go to a temporary file in the same folder, are flushed to
disk, and only then renamed over the old file, so a crash mid-write leaves the previous
checkpoint whole. They stream straight to that file: a save holds no second copy of a
large replay buffer in memory.

Loads use `weights_only=True`, so unpickling a checkpoint can build tensors and plain
containers but never call code. That alone does not make a file safe to act on: its
env id could name a module for Gymnasium to import. `checkpoint_payload.read_config`
refuses such ids, so nothing a checkpoint says is ever imported.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

FORMAT = "ddpg-tui-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """The checkpoint is missing, corrupt, unsafe or does not fit."""


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # os.open with 0o666 lets the umask decide the mode (0644 typically), as for any
    # file a program writes; tempfile.mkstemp would force 0600.
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        tmp_name.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda file: file.write(data))


def content_digest(value: Any) -> str:
    """A checksum of everything in a payload: every tensor's bytes and every plain value.

    torch's zip container does not verify its CRCs on load, so without this a flipped
    bit in a weight would load silently (measured: 29 of 38 single-byte flips did).
    """
    import torch  # here, not at the top: the CLI imports this module for its errors alone

    digest = hashlib.blake2b(digest_size=16)

    def feed(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            flat = item.detach().cpu().reshape(-1).contiguous()  # a view, not a copy, when already contiguous
            digest.update(f"tensor{item.dtype}{tuple(item.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy())  # hashed in place through the buffer protocol
        elif isinstance(item, dict):
            digest.update(b"{")
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode())
                feed(item[key])
            digest.update(b"}")
        elif isinstance(item, (list, tuple)):
            digest.update(b"[")
            for element in item:
                feed(element)
            digest.update(b"]")
        else:
            digest.update(repr(item).encode())

    feed(value)
    return digest.hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` plus the format header and its checksum to `path` atomically."""
    import torch

    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    full["checksum"] = content_digest(full)
    atomic_write(Path(path), lambda file: torch.save(full, file))
    return Path(path)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; every failure is a CheckpointError with one clear line."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = resolve_checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not _looks_like_torch_file(path):
        raise CheckpointError(f"{path} is not a ddpg-tui checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses any global that is not a tensor or a plain container.
        # Only a GLOBAL (a class or function to import) means "code"; other failures of
        # the restricted unpickler are plain corruption.
        if "global" in str(error).lower():
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects and was refused "
                "(only tensors and plain values are loaded)"
            ) from None
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt") from None
    except Exception:
        # Arbitrary bytes make the unpickler fail in arbitrary ways (IndexError, EOFError,
        # RuntimeError from the zip reader, ...): all of them mean the file is damaged.
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ddpg-tui checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this ddpg-tui reads version {FORMAT_VERSION}"
        )
    checksum = payload.pop("checksum", None)
    try:
        intact = checksum == content_digest(payload)
    except (RuntimeError, ValueError, TypeError):  # e.g. a flipped stride makes a tensor unreadable
        intact = False
    if not intact:
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt (its checksum does not match)")
    return payload


def _looks_like_torch_file(path: Path) -> bool:
    """False for a file that is no torch file at all (notes, a CSV), so it is not called corrupt.

    torch.save writes a zip (its first bytes are "PK", 3, 4); old torch files and bare
    pickles start with the pickle protocol byte 0x80. An empty file is taken as truncated,
    and an unreadable one is left to torch.load to report.
    """
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError:
        return True
    return not head or head == b"PK\x03\x04" or head[:1] == b"\x80"


def resolve_checkpoint_path(run_dir: Path) -> Path:
    """A run folder stands for its latest checkpoint."""
    for candidate in (run_dir / "checkpoints" / "latest.pt", run_dir / "latest.pt"):
        if candidate.exists():
            return candidate
    raise CheckpointError(f"{run_dir} holds no checkpoint (looked for checkpoints/latest.pt)")
