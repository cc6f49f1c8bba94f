"""Where call audio lives, named by URL: ``file:///var/lib/overtalk/audio`` (a directory).

The directory is what the deployment makes durable (a PersistentVolume, ReadWriteMany when
several replicas share it). Recordings are written there by the carriers as
``<call id>.wav``; a stored call's ``audio_url`` is the file's URL. Other schemes (``s3://``)
are refused with a clear message: they are not built.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.callstore.record import valid_call_id

__all__ = ["AudioStore", "UnsupportedAudioStore", "open_audio_store"]


class UnsupportedAudioStore(ValueError):
    """The audio store URL names a scheme this gateway cannot write to."""


class AudioStore:
    """A directory of recordings (``<call id>.wav``) and voicemail audio."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def path_for(self, call_id: str) -> Path:
        if not valid_call_id(call_id):
            raise ValueError(f"invalid call id {call_id[:40]!r}")
        return self.root / f"{call_id}.wav"

    def url_of(self, call_id: str) -> str | None:
        """The URL of a call's recording, when there is one."""
        path = self.path_for(call_id)
        return path.as_uri() if path.is_file() else None

    def keep(self, call_id: str, recording: Path) -> str:
        """Move a finished recording into the store (unless it is there); its URL.

        Raises OSError when it cannot be moved (the caller keeps it where it is)."""
        target = self.path_for(call_id)
        if recording.resolve() != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(recording, target)
        return target.as_uri()

    def local_path(self, url: str) -> Path | None:
        """The file behind one of this store's URLs; None for anything outside it."""
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path)).resolve()
        if path.parent != self.root or not path.is_file():
            return None
        return path

    def delete(self, url: str) -> bool:
        path = self.local_path(url)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    def prune(self, older_than: float, pattern: str = "**/*") -> int:
        """Delete files matching ``pattern`` last written before a time; how many."""
        removed = 0
        for path in self.root.glob(pattern):
            try:
                if path.is_file() and path.lstat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def open_audio_store(url: str) -> AudioStore:
    """``file:///dir`` or a plain directory path."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        root = unquote(parts.path) if parts.scheme else url
        if not root:
            raise UnsupportedAudioStore(f"audio store {url!r} names no directory")
        Path(root).mkdir(parents=True, exist_ok=True)
        return AudioStore(root)
    raise UnsupportedAudioStore(
        f"audio store {url!r}: only file:// (a directory) is built; mount an S3 bucket as a "
        "file system (or a PersistentVolume) and give its path"
    )
