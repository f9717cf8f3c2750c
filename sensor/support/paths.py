"""Where madoc keeps state (spools, databases) when the configuration does not say."""

from __future__ import annotations

import os
from pathlib import Path


def instance_of(config: Path, program: str) -> str | None:
    """The instance a configuration file is for: `sensor-eth1.yaml` is madoc-sensor@eth1's
    (`program` "sensor"), `collector-dept.yaml` madoc-collector@dept's; None for the
    main one (`sensor.yaml`, or any other name)."""
    stem = config.name.removesuffix(".yaml").removesuffix(".yml")
    return stem[len(program) + 1:] or None if stem.startswith(program + "-") else None


def unit_state_directory() -> Path | None:
    """The StateDirectory= systemd gives the running unit (its first), None outside one."""
    given = os.environ.get("STATE_DIRECTORY")
    return Path(given.split(":")[0]) if given else None


def state_directory(service: str = "madoc", instance: str | None = None) -> Path:
    """systemd's StateDirectory when run as a service, else the service's own for root
    (/var/lib/madoc for the sensor, /var/lib/madoc-collector for the collector, with
    /INSTANCE for a template unit's instance: the units' StateDirectory=, so root's
    commands find the service's state), else $XDG_STATE_HOME/madoc
    (~/.local/state/madoc)."""
    unit_state = unit_state_directory()
    if unit_state:
        return unit_state
    if os.getuid() == 0:
        return Path("/var/lib") / service / (instance or "")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "madoc" \
        / (instance or "")


def cache_directory() -> Path:
    """systemd's CacheDirectory when run as a service, else the sensor service's
    (/var/cache/madoc) for root, else $XDG_CACHE_HOME/madoc (~/.cache/madoc): compiled
    rules and the last good copy of remote lists."""
    if "CACHE_DIRECTORY" in os.environ:
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    if os.getuid() == 0:
        return Path("/var/cache/madoc")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "madoc"


def create_secret_file(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (mode 0600 from its creation, never
    wider for a moment); an existing file is an error, not overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
