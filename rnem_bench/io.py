"""Files written atomically, checkpoints read safely, shipped files checked against pinned hashes.

Every file the package writes for later reading (run configs, logs, checkpoints, result files)
goes through ``atomic_write_text`` / ``atomic_torch_save``: a temp file in the same folder, then
``os.replace``, so a reader (or a resumed run) sees the old file or the new one, never half.
Checkpoints are read with ``torch.load(weights_only=True)``: never unpickle arbitrary objects.
torch is imported only by the functions that need it, so JSON-only callers stay light.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from rnem_bench.errors import RnemBenchError


def _umask_mode() -> int:
    """The mode open() gives a new file: mkstemp's 0600 would hide shipped policies from other users.

    Read once at import: os.umask can only be read by setting it, which would race other threads.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _umask_mode()


def _atomic(path: Path, write: Callable[[Any], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch

    _atomic(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A torch checkpoint, tensors and plain containers only (``weights_only=True``), on the CPU."""
    import torch

    if not Path(path).exists():
        raise RnemBenchError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign file: one line, not a traceback
        raise RnemBenchError(f"cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line (a run's log.jsonl); [] if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pinned(path: str | Path, sha256: str, missing: str, changed: str | None = None) -> Path:
    """``path`` after checking that it is a file whose sha256 is the pinned one. Errors are one line:
    ``missing`` when there is no file, ``changed`` (default: says the file was changed or damaged)
    when the hash differs."""
    path = Path(path)
    if not path.is_file():
        raise RnemBenchError(missing)
    if file_sha256(path) != sha256:
        raise RnemBenchError(changed or f"{path} does not match its pinned sha256: the file was changed or damaged")
    return path
