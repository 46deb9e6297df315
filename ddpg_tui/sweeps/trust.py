"""What `sweep --resume` checks before anything in a sweep folder can run code.

A sweep folder holds Ray Tune's state, and Tune reads it back with pickle: `tune/tuner.pkl`,
`tune/basic-variant-state-*.json` (a pickle despite its name), `tune/experiment_state-*.json`
(JSON whose trials are cloudpickled blobs) and any `searcher-state`/`callback-states` file.
Unpickling runs code, so anyone who can write the folder could run code as whoever resumes it.

So every file at the top of `tune/` is signed with HMAC-SHA256 under a key of this user's
(`$XDG_CONFIG_HOME/ddpg-tui/sweep-key`, made 0600 on first use), each time Tune has written
its state, and checked before Tune may read it. The trials' checkpoints under `tune/<trial>/`
are not Tune's pickles: ddpg-tui loads them itself with `weights_only`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from ddpg_tui.sweeps.spec import TUNE_DIR, SweepError

SIGNATURE_FILE = "tune-state.sig"
KEY_BYTES = 32


class SweepTrustError(SweepError):
    """Tune's state in a sweep folder is not known to be this user's: one line, exit 2."""


def key_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "ddpg-tui" / "sweep-key"


def signing_key() -> bytes:
    """This user's key, made on first use; O_EXCL so that two sweeps starting at once share one."""
    path = key_path()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by another process in the meantime
        return _read_key(path)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(KEY_BYTES))
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise SweepTrustError(f"the sweep signing key {path} is damaged (too short); delete it to make a new one")
    return key


def state_files(sweep_dir: Path) -> list[Path]:
    """Tune's state files: every file at the top of tune/ (the trials' folders hold only checkpoints)."""
    tune_dir = Path(sweep_dir) / TUNE_DIR
    if not tune_dir.is_dir():
        return []
    return sorted(p for p in tune_dir.iterdir() if p.is_file())


def _digest(key: bytes, path: Path) -> str:
    return hmac.new(key, path.read_bytes(), hashlib.sha256).hexdigest()


def _read_signatures(sweep_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((Path(sweep_dir) / SIGNATURE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


class StateSigner:
    """Signs Tune's state files after each write; re-hashes only files whose size or mtime changed."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.key = signing_key()
        self._seen: dict[str, tuple[int, int]] = {}
        self._signatures = _read_signatures(self.sweep_dir)

    def sign(self) -> None:
        changed = False
        for path in state_files(self.sweep_dir):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                stamp = (stat.st_size, stat.st_mtime_ns)
                if self._seen.get(path.name) == stamp:
                    continue
                self._signatures[path.name] = _digest(self.key, path)
                self._seen[path.name] = stamp
                changed = True
        if changed:
            target = self.sweep_dir / SIGNATURE_FILE
            partial = target.with_name(f".{SIGNATURE_FILE}.writing")
            partial.write_text(json.dumps(self._signatures, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(partial, target)  # a kill mid-write keeps the previous signatures whole


def verify_state(sweep_dir: Path) -> None:
    """Refuse Tune state this user's sweep did not write; before anything of it is unpickled."""
    files = state_files(sweep_dir)
    if not files:
        return
    key = signing_key()
    signatures = _read_signatures(sweep_dir)
    for path in files:
        expected = signatures.get(path.name)
        if expected is None:
            raise SweepTrustError(
                f"{path} has no signature, so it may not be the state this user's sweep wrote (Tune unpickles it, "
                "which can run code); if the sweep's driver was killed the instant Tune wrote it, or you trust "
                "this folder, pass --trust-folder")
        if not hmac.compare_digest(expected, _digest(key, path)):
            raise SweepTrustError(
                f"{path} does not match its signature: it was changed after this user's sweep wrote it, was written "
                "under another key, or was written the instant before the sweep's driver was killed (Tune unpickles "
                "it, which can run code); pass --trust-folder if you trust this folder")
