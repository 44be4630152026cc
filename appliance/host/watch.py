"""Watch folders: files that appear or change in a configured folder become resource versions.

A machine writes a CSV every hour; the running node takes each one once it is complete. A file is
complete when its size and modification time have stayed the same for ``settle_seconds``
(a writer still appending changes them); names that writers use for files being written (hidden,
``.tmp``, ``.part``, ``~``) are never taken, so a writer that renames a finished file into place is
taken at once after the settle time. Settled files are taken oldest first (then by name), so a
burst is handled in the order it was written; each is registered with the folder's labels and
masking rules, and, if the folder says so, packaged as a draft product with an offer from a
template and put forward for listing in the named spaces.

Nothing is lost across restarts: the state is the node's own resource register (a file that is
registered and unchanged gives no new version), so after a restart every file is looked at once
more and only what changed while the node was stopped becomes a new version.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

PARTIAL = (".tmp", ".part", ".partial", ".crdownload", "~", ".swp")


@dataclass(frozen=True)
class WatchedFileTaken:
    """A watched file became a resource (``created``) or a new version of one."""

    folder: str
    file: str
    resource_id: str
    version: int
    created: bool
    product_id: str | None = None


@dataclass(frozen=True)
class WatchedFileFailed:
    """A watched file could not be taken; it is tried again when it changes."""

    folder: str
    file: str
    reason: str  # English, for the log; the user sees the error's own message in their language


class FolderWatcher:
    """Polls one :class:`~appliance.settings.WatchFolder` and registers what settles there."""

    def __init__(self, node, config, *, monotonic=None) -> None:
        import time

        self.node = node
        self.config = config
        self.folder = Path(config.folder)
        self._monotonic = monotonic or time.monotonic
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, since)
        self._taken: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) when last taken or failed
        self.taken = 0
        self.failed = 0

    def _candidates(self) -> list[os.DirEntry]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        out = []
        for e in entries:
            name = e.name
            if name.startswith(".") or name.endswith(PARTIAL) or not fnmatch.fnmatch(name, self.config.pattern):
                continue
            try:
                if not e.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            out.append(e)
        return out

    def poll(self) -> list[Path]:
        """Look once; take every file that has settled and is new or changed. Returns the files taken."""
        now = self._monotonic()
        settled: list[tuple[int, str, Path]] = []
        present = set()
        for e in self._candidates():
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            present.add(e.name)
            key = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(e.name)
            if seen is None or seen[:2] != key:
                self._seen[e.name] = (*key, now)
                if self.config.settle_seconds > 0:
                    continue
                seen = self._seen[e.name]
            if now - seen[2] < self.config.settle_seconds:
                continue
            if self._taken.get(e.name) == key:
                continue
            settled.append((st.st_mtime_ns, e.name, Path(e.path)))
        for gone in set(self._seen) - present:
            self._seen.pop(gone, None)
            self._taken.pop(gone, None)
        out = []
        for _, name, path in sorted(settled):
            key = self._seen[name][:2]
            if self._take(path):
                out.append(path)
            self._taken[name] = key
        return out

    def _prepare(self, rid: str, title: str) -> str | None:
        """Labels, masking, product and listing of a new resource; if one of them fails, the
        resource is removed again, so that nothing is left registered without its masking."""
        cfg, node = self.config, self.node
        try:
            if cfg.category is not None or cfg.sensitivity is not None:
                node.resources.label(rid, category=cfg.category, sensitivity=cfg.sensitivity)
            if cfg.masking:
                node.resources.set_masking(rid, list(cfg.masking))
            if not cfg.product:
                return None
            offers = ([node.products.offer_from_template(cfg.offer_template, cfg.offer_params or {})]
                      if cfg.offer_template else [])
            product = node.products.create(title=title, resource_ids=[rid], offers=offers)
            for space_id in cfg.list_in:
                node.products.request_listing(product.id, space_id)
            return product.id
        except ApplianceError:
            try:
                node.resources.remove(rid)
            except ApplianceError as e:
                log.warning("watch folder %s: could not remove %s again: %s", self.folder, rid, e.message("en"))
            raise

    def _take(self, path: Path) -> bool:
        cfg, node = self.config, self.node
        title = cfg.title.format(name=path.name, stem=path.stem)
        try:
            reg = node.resources.register(path, mode=cfg.mode, title=title)
            if not (reg.created or reg.changed):
                return False
            rid = reg.resource.id
            product_id = self._prepare(rid, title) if reg.created else None
        except ApplianceError as e:
            self.failed += 1
            reason = e.message("en")
            log.warning("watch folder %s: %s was not taken: %s", self.folder, path.name, reason)
            node.bus.emit(WatchedFileFailed(str(self.folder), path.name, reason))
            return False
        self.taken += 1
        log.info("watch folder %s: %s is resource %s version %d", self.folder, path.name, rid, reg.version.version)
        node.bus.emit(WatchedFileTaken(str(self.folder), path.name, rid, reg.version.version, reg.created,
                                       product_id))
        return True


class Watchers:
    """All watch folders of the settings, polled in one background thread."""

    def __init__(self, node, folders) -> None:
        self.watchers = [FolderWatcher(node, f) for f in folders]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        roots = list(node.resources.allowed_roots)
        for w in self.watchers:  # a folder the administrator configured may be read
            if not any(_within(w.folder, r) for r in roots):
                roots.append(w.folder)
        node.resources.allowed_roots = roots

    def start(self) -> None:
        if not self.watchers:
            return
        self._thread = threading.Thread(target=self._run, name="dsnode-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        interval = min(w.config.poll_seconds for w in self.watchers)
        while not self._stop.is_set():
            for w in self.watchers:
                if self._stop.is_set():
                    return
                try:
                    w.poll()
                except Exception:  # noqa: BLE001 - one folder's bug must not stop the others; it is logged
                    log.exception("watch folder %s failed", w.folder)
            self._stop.wait(max(0.05, interval))


def _within(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False
