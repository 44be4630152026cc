"""Watch folders on a real node: a file being written is not taken, a settled one is (with the
folder's labels, masking and product), a changed one becomes a new version, a burst is taken in
order and whole, and a running node's watcher does it by itself."""

from __future__ import annotations

import os
import time

import pytest

from appliance.host import NodeHost
from appliance.host.watch import FolderWatcher
from appliance.settings import WatchFolder, load_settings
from tests.spaces import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _csv(path, rows: int = 2, start: int = 0) -> None:
    path.write_text("machine,temperature,phone\n" + "".join(
        f"M{i},{20 + i % 7},1380013{i % 10000:04d}\n" for i in range(start, start + rows)), encoding="utf-8")


def test_a_file_being_written_is_not_taken_until_it_settles(node, data):
    clock = Clock()
    w = FolderWatcher(node, WatchFolder(folder=data, settle_seconds=5), monotonic=clock)
    f = data / "hour-01.csv"
    _csv(f)
    assert w.poll() == []  # just seen
    clock.now += 3
    with open(f, "a", encoding="utf-8") as out:  # the machine is still writing
        out.write("M9,25,13800139999\n")
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert w.poll() == []
    clock.now += 4  # 4 s since the last change: not yet
    assert w.poll() == [] and node.resources.list() == []
    clock.now += 2
    assert w.poll() == [f]
    (r,) = node.resources.list()
    assert r.title == "hour-01" and node.resources.version(r.id).row_count == 3
    clock.now += 10
    assert w.poll() == [], "an unchanged file is not taken twice"


def test_partial_and_hidden_names_are_never_taken(node, data):
    clock = Clock()
    w = FolderWatcher(node, WatchFolder(folder=data, settle_seconds=0), monotonic=clock)
    for name in (".hidden.csv", "a.csv.tmp", "b.csv.part", "c.csv~"):
        _csv(data / name)
    assert w.poll() == [] and node.resources.list() == []


def test_a_settled_file_gets_the_folders_labels_masking_and_a_product(node, data):
    clock = Clock()
    cfg = WatchFolder(folder=data, pattern="*.csv", settle_seconds=1, category="important", sensitivity=2,
                      masking=({"column": "phone", "rule": "mask"},), product=True, title="Line 3 {stem}")
    w = FolderWatcher(node, cfg, monotonic=clock)
    _csv(data / "h1.csv")
    (data / "notes.txt").write_text("not a csv", encoding="utf-8")
    w.poll()
    clock.now += 2
    assert [p.name for p in w.poll()] == ["h1.csv"]
    (r,) = node.resources.list()
    assert (r.category, r.sensitivity) == ("important", 2)
    assert [m["column"] for m in r.masking] == ["phone"]
    (p,) = node.products.list()
    assert p.title == "Line 3 h1"


def test_a_changed_file_becomes_a_new_version(node, data):
    clock = Clock()
    w = FolderWatcher(node, WatchFolder(folder=data, settle_seconds=1), monotonic=clock)
    f = data / "latest.csv"
    _csv(f)
    w.poll()
    clock.now += 2
    w.poll()
    _csv(f, rows=5)
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    w.poll()
    clock.now += 2
    assert w.poll() == [f]
    (r,) = node.resources.list()
    assert r.current_version == 2


def test_a_bad_file_is_reported_and_the_others_are_taken(node, data, observed_errors):
    clock = Clock()
    w = FolderWatcher(node, WatchFolder(folder=data, settle_seconds=0), monotonic=clock)
    (data / "a.csv").write_bytes(b"\xff\xfe\x00bad\x00" * 10)
    _csv(data / "b.csv")
    failed = []
    node.bus.subscribe(lambda e: failed.append(e) if type(e).__name__ == "WatchedFileFailed" else None)
    w.poll()
    names = [r.title for r in node.resources.list()]
    assert "b" in names
    if "a" not in names:
        assert failed and failed[0].file == "a.csv" and w.failed == 1


@pytest.mark.slow
def test_a_burst_of_a_thousand_files_is_taken_in_order_without_loss(node, data):
    base = time.time_ns() - 10**12
    for i in range(1000):
        f = data / f"r{999 - i:04d}.csv"  # names run against the order they were written in
        _csv(f, rows=1, start=i)
        os.utime(f, ns=(base + i * 1000, base + i * 1000))
    order = []
    node.bus.subscribe(lambda e: order.append(e.file) if type(e).__name__ == "WatchedFileTaken" else None)
    host = NodeHost(node, watch=(WatchFolder(folder=data, settle_seconds=0.2, poll_seconds=0.1),))
    host.start()
    try:
        wait_for(lambda: len(order) >= 1000, 120, "1000 files taken")
    finally:
        host.stop()
    assert order == [f"r{999 - i:04d}.csv" for i in range(1000)], "oldest first"
    assert len(node.resources.list()) == 1000


def test_watch_tables_in_the_settings_file_are_read_and_checked(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[[watch]]\nfolder = "/data/line3"\npattern = "*.csv"\nsettle_seconds = 10\n'
                    'masking = [{column = "phone", rule = "mask"}]\nlist_in = ["auto-parts"]\n', encoding="utf-8")
    (w,) = load_settings(config_path=good, env={}).watch
    assert (str(w.folder), w.pattern, w.settle_seconds, w.list_in) == ("/data/line3", "*.csv", 10.0, ("auto-parts",))
    from appliance.settings import check_config

    bad = tmp_path / "bad.toml"
    bad.write_text('log_level = "INFO"\n\n[[watch]]\nfolder = "/x"\nsettle = 3\n', encoding="utf-8")
    (problem,) = check_config(bad)
    assert problem.line == 3 and "settle" in problem.text.message("en")
