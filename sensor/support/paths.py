"""Where madoc keeps state (spools, databases) when the configuration does not say."""

from __future__ import annotations

import os
from pathlib import Path


def state_directory() -> Path:
    """systemd's StateDirectory when run as a service, else /var/lib/madoc (root) or
    $XDG_STATE_HOME/madoc (~/.local/state/madoc)."""
    if "STATE_DIRECTORY" in os.environ:
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/madoc")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "madoc"


def cache_directory() -> Path:
    """systemd's CacheDirectory when run as a service, else $XDG_CACHE_HOME/madoc
    (~/.cache/madoc): compiled rules and the last good copy of remote lists."""
    if "CACHE_DIRECTORY" in os.environ:
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "madoc"


def create_secret_file(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (mode 0600 from its creation, never
    wider for a moment); an existing file is an error, not overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
