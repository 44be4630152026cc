"""Which paths registration may read, and walking a folder safely.

A path is checked *after* resolving symlinks, so a link inside an allowed folder that points
outside it is refused like the target itself. A folder walk follows links to folders but never
enters the same folder twice (it remembers each folder's ``(st_dev, st_ino)``), so a symlink loop
is reported and skipped instead of recursing forever. Unreadable entries are reported too.
Include/exclude patterns are shell globs matched against the path relative to the folder
(``data/2026/*.csv``); a pattern without ``/`` also matches the bare name (``*.csv``, ``~$*``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from appliance.errors import LocalText, PathNotAllowed, SourceUnreadable

DEFAULT_ROOTS = ("~", "/srv", "/data", "/mnt", "/media")
ROOTS_ENV = "DSNODE_ALLOWED_ROOTS"  # where the CLI takes the allowed folders from (edge/cmd_resource.py)

_MISSING = LocalText("resource.reason.missing")
_LOOP = LocalText("resource.reason.symlink_loop")
_OS_REASONS: dict[int | None, LocalText] = {
    errno.ENOENT: _MISSING,
    errno.ELOOP: _LOOP,
    errno.EACCES: LocalText("resource.reason.permission_denied"),
    errno.EPERM: LocalText("resource.reason.permission_denied"),
    errno.EIO: LocalText("resource.reason.io_error"),
    errno.ENOTDIR: LocalText("resource.reason.not_a_folder_on_the_way"),
}


def default_roots() -> list[Path]:
    return [Path(os.path.expanduser(r)) for r in DEFAULT_ROOTS]


def os_reason(e: OSError) -> LocalText:
    """Why a file could not be opened or read, in the user's language (the system's own words otherwise)."""
    known = _OS_REASONS.get(e.errno)
    return known if known is not None else LocalText("resource.reason.os_error", e.strerror or type(e).__name__)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        raise SourceUnreadable(path, _MISSING) from None
    except RuntimeError:  # "Symlink loop" from pathlib
        raise SourceUnreadable(path, _LOOP) from None
    except OSError as e:
        raise SourceUnreadable(path, os_reason(e)) from None


def inside(resolved: Path, roots: Sequence[Path]) -> bool:
    for root in roots:
        try:
            real_root = Path(root).resolve()
        except (OSError, RuntimeError):
            continue
        if resolved == real_root or resolved.is_relative_to(real_root):
            return True
    return False


def check_allowed(path: Path, roots: Sequence[Path]) -> Path:
    """The resolved path; SourceUnreadable if it is missing, PathNotAllowed if outside ``roots``."""
    resolved = _resolve(Path(os.path.expanduser(str(path))))
    if not inside(resolved, roots):
        raise PathNotAllowed(path, _how_to_allow(resolved, roots))
    return resolved


def _how_to_allow(resolved: Path, roots: Sequence[Path]) -> LocalText:
    """The allowed folders, and how to allow the one holding ``resolved`` as well (``DSNODE_ALLOWED_ROOTS``)."""
    listed = [str(r) for r in roots]
    folder = resolved if resolved.is_dir() else resolved.parent
    example = os.pathsep.join([*listed, str(folder)])
    if not listed:
        return LocalText("resource.reason.no_allowed_roots", ROOTS_ENV, os.pathsep, example)
    return LocalText("resource.reason.allowed_roots", ", ".join(listed), ROOTS_ENV, os.pathsep, example)


def matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatchcase(rel, p) or ("/" not in p and fnmatchcase(name, p)) for p in patterns)


@dataclass
class FolderEntry:
    rel: str  # POSIX path relative to the folder
    path: Path  # resolved
    size: int
    mtime_ns: int


@dataclass
class FolderListing:
    files: list[FolderEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    excluded: int = 0


def walk_folder(root: Path, roots: Sequence[Path], include: Sequence[str] = (),
                exclude: Sequence[str] = ()) -> FolderListing:
    """Every regular file under ``root`` (resolved, allowed) that the patterns select, in path order."""
    out = FolderListing()
    top = os.stat(root)
    visited = {(top.st_dev, top.st_ino)}
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            out.skipped.append((prefix or ".", e.strerror or "unreadable"))
            continue
        for entry in entries:
            _visit(entry, prefix + entry.name, roots, include, exclude, visited, pending, out)
    out.files.sort(key=lambda f: f.rel)
    return out


def _visit(entry: os.DirEntry, rel: str, roots, include, exclude, visited, pending, out: FolderListing) -> None:
    if exclude and matches(rel, exclude):
        out.excluded += 1
        return
    try:
        st = entry.stat(follow_symlinks=True)
    except OSError as e:
        reason = "symlink loop" if e.errno == 40 else ("broken symlink" if entry.is_symlink() else
                                                          e.strerror or "unreadable")
        out.skipped.append((rel, reason))
        return
    real = Path(entry.path)
    if entry.is_symlink():
        try:
            real = Path(entry.path).resolve(strict=True)
        except (OSError, RuntimeError):
            out.skipped.append((rel, "symlink loop"))
            return
        if not inside(real, roots):
            out.skipped.append((rel, "outside the allowed folders"))
            return
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in visited:
            out.skipped.append((rel, "symlink loop"))
            return
        visited.add(key)
        pending.append((real, rel + "/"))
    elif stat.S_ISREG(st.st_mode):
        if include and not matches(rel, include):
            out.excluded += 1
            return
        if not os.access(real, os.R_OK):
            out.skipped.append((rel, "permission denied"))
            return
        out.files.append(FolderEntry(rel, real, st.st_size, st.st_mtime_ns))
    else:
        out.skipped.append((rel, "not a regular file"))
