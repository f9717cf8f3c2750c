"""On-disk cache of compiled blocklists, so a restart with unchanged lists is fast.

The key is a hash of every rules file's and list file's path, size and
modification time, plus the source of the modules whose objects are pickled
(so a changed matcher never meets an old pickle); any change misses and
rebuilds. Only rules whose sources are all local files are cached
(a remote list's content is not known before it is fetched). The file is a
pickle, so it is read only from a directory this user owns and nobody else can
write to, and only if this user owns the file; anything else is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from functools import cache
from pathlib import Path

from sensor import __version__
from sensor.blocklist.loader import LoadReport, Source, load_sources, read_sources
from sensor.blocklist.matcher import Blocklist

CACHE_FORMAT = 1
_PICKLED_CODE = ("matcher.py", "loader.py", "../core/events.py")


@cache
def _code_stamp() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _PICKLED_CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return str(path), -1, -1
    return str(path), info.st_size, info.st_mtime_ns


def cache_key(rules_paths: list[Path], sources: list[Source]) -> str:
    stamps = [_stamp(p) for p in rules_paths] + [_stamp(s.path) for s in sources]
    text = repr((CACHE_FORMAT, __version__, _code_stamp(), stamps, [s.options for s in sources]))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _trusted(path: Path) -> bool:
    """Owned by us and writable by nobody else (the file and its directory)."""
    uid = os.geteuid()
    for item in (path.parent, path):
        info = item.stat()
        if info.st_uid != uid or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
    return True


def load_cached(rules_paths: list[Path], cache_dir: Path) -> tuple[Blocklist, LoadReport, bool]:
    """(blocklist, report, from_cache); compiles and stores it on a miss."""
    sources = [source for path in rules_paths for source in read_sources(path)]
    if any(source.url for source in sources):
        return (*load_sources(sources, cache_dir), False)
    path = cache_dir / f"blocklist-{cache_key(rules_paths, sources)}.pickle"
    if path.exists() and _trusted(path):
        try:
            with open(path, "rb") as cached:
                blocklist, report = pickle.load(cached)
            return blocklist, report, True
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
            pass                                   # unreadable or from older code: rebuild
    blocklist, report = load_sources(sources, cache_dir)
    if not report.failed:
        _store(path, (blocklist, report))
    return blocklist, report, False


def _store(path: Path, value: object) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        for old in path.parent.glob("blocklist-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass                                       # a cache that cannot be written is no cache
