"""The app's own preferences (language, idle lock), kept next to the store as ``desktop.json``."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "desktop.json"


@dataclass(frozen=True)
class Prefs:
    lang: str | None = None  # None: from the system locale
    idle_minutes: int = 15  # 0: never lock
    keep_in_tray: bool = False  # closing the window leaves the node running in the system tray

    def with_(self, **changes) -> Prefs:
        return replace(self, **changes)


def load(home: Path) -> Prefs:
    try:
        data = json.loads((Path(home) / FILE).read_text(encoding="utf-8"))
        return Prefs(lang=data.get("lang") if data.get("lang") in ("zh_CN", "en") else None,
                     idle_minutes=max(0, int(data.get("idle_minutes", 15))),
                     keep_in_tray=bool(data.get("keep_in_tray", False)))
    except (OSError, ValueError, TypeError, AttributeError):
        return Prefs()


def save(home: Path, prefs: Prefs) -> None:
    path = Path(home) / FILE
    try:
        path.write_text(json.dumps(asdict(prefs)), encoding="utf-8")
    except OSError as e:
        log.warning("could not keep the desktop preferences: %s", type(e).__name__)
