"""At scale: a store of 10,000 resources and 100,000 evidence entries; the lists show their first page,
read more only as they scroll, and filter in the core's query."""

from __future__ import annotations

import shutil

import pytest

from appliance.node import KDF_PROFILES, Node
from bench.gui_data import NAMES
from tests.gui.conftest import PASSPHRASE

RESOURCES, EVIDENCE = 10_000, 100_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """Built once for the module (about six seconds), copied for each test."""
    root = tmp_path_factory.mktemp("big")
    from bench.gui_data import fill

    node = Node.init(root / "home", PASSPHRASE.encode(), name="大节点", org="示例公司", kdf=KDF_PROFILES["minimum"]())
    try:
        fill(node, root / "data", resources=RESOURCES, evidence=EVIDENCE)
    finally:
        node.close()
    return root / "home"


@pytest.fixture
def big(qtbot, big_store, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DSNODE_ALLOWED_ROOTS", str(tmp_path))
    shutil.copytree(big_store, settings.home)
    from ui import dialogs
    from ui.app import DesktopApp
    from ui.tasks import wait_all

    app = DesktopApp(settings)
    app.run(Node.open(settings.home, PASSPHRASE.encode()))
    yield app
    dialogs.close_all()
    wait_all()
    app.stop()


def _scroll_to_end(qtbot, view) -> int:
    before = view.model().rowCount()
    view.scrollToBottom()
    qtbot.waitUntil(lambda: view.model().rowCount() > before, timeout=5000)
    return view.model().rowCount()


def test_the_resources_page_shows_the_newest_page_and_reads_more_as_it_scrolls(qtbot, big, english):
    page = big.window.show_page("resources")
    qtbot.waitUntil(page.list.isVisible)
    qtbot.wait(200)  # the view asks for more only while its last row is in sight
    model = page.model
    assert 0 < model.rowCount() <= 2 * model.page, "a bounded first page, not the whole register"
    assert model.text(0, 0) == "采购订单明细.csv", "the newest resource on top (the one registered last)"
    assert model.text(1, 0) == "物流运单-09999"
    assert page.count.text() == f"{RESOURCES} resources"
    rows = _scroll_to_end(qtbot, page.list)
    assert rows <= 3 * model.page
    oldest_read = RESOURCES - (rows - 1)
    assert model.text(rows - 1, 0) == f"{NAMES[oldest_read % len(NAMES)]}-{oldest_read:05d}"
    page.list.selectRow(rows - 1)
    assert page.detail.isVisible(), "a row read by scrolling opens like any other"


def test_the_resources_page_keeps_its_place_until_the_register_changes(qtbot, big, english, tmp_path):
    window = big.window
    page = window.show_page("resources")
    rows = _scroll_to_end(qtbot, page.list)
    window.show_page("evidence")
    window.show_page("resources")
    assert page.model.rowCount() == rows, "coming back reads nothing again"
    (tmp_path / "新登记.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    big.node.resources.register(tmp_path / "新登记.csv")
    qtbot.waitUntil(lambda: page.model.rowCount() and page.model.text(0, 0) == "新登记.csv", timeout=5000)
    assert page.count.text() == f"{RESOURCES + 1} resources"


def test_the_resources_search_is_the_core_query(qtbot, big, english):
    page = big.window.show_page("resources")
    page.search.setText("质检报告-0001")
    page.search.returnPressed.emit()
    titles = [page.model.text(i, 0) for i in range(page.model.rowCount())]
    assert titles == ["质检报告-00018", "质检报告-00010"], "found among 10,000 without reading them into the app"
    assert page.count.text() == "2 resources"
    page.search.clear()
    assert page.model.rowCount() <= 2 * page.model.page


def test_the_products_page_offers_a_bounded_choice_of_resources_and_finds_the_rest(qtbot, big, english):
    from ui.pages.products import PICK

    page = big.window.show_page("products")
    assert page.resources.count() == PICK
    page.find.setText("客户档案-00003")
    page.find.returnPressed.emit()
    assert [page.resources.item(i).text().split(" (")[0] for i in range(page.resources.count())] == ["客户档案-00003"]


def test_the_evidence_page_shows_the_newest_entries_and_reads_older_ones_as_it_scrolls(qtbot, big, english):
    node = big.node
    page = big.window.show_page("evidence")
    qtbot.waitUntil(page.log.isVisible)
    qtbot.wait(200)
    model = page.model
    size = node.evidence.size()
    assert size >= EVIDENCE
    assert 0 < model.rowCount() <= 2 * model.page
    assert model.text(0, 0) == str(size - 1), "newest first"
    assert page.where.text() == f"{size} entries, newest first"
    rows = _scroll_to_end(qtbot, page.log)
    assert rows <= 3 * model.page
    assert model.text(rows - 1, 0) == str(size - rows)
    node.evidence.record("settings.changed", node.identity.did)
    page.safe_refresh()
    assert model.text(0, 0) == str(size), "a new entry goes on top"
    assert model.rowCount() == rows + 1, "what was read stays"


def test_the_evidence_filter_finds_an_action_by_its_name_in_the_readers_language(qtbot, big, zh):
    node = big.node
    page = big.window.show_page("evidence")
    page.search.setText("资源已登记")  # the Chinese name of resource.registered
    page.search.returnPressed.emit()
    assert page.where.text().startswith(f"{RESOURCES} ")
    actions = {page.model.rows[i].action for i in range(page.model.rowCount())}
    assert actions == {"resource.registered"}
    page.search.setText("agreement:7")
    page.search.returnPressed.emit()
    assert page.model.rowCount() > 0
    assert all("agreement:7" in e.subject for e in page.model.rows)
    assert node.evidence.count(text="agreement:7") == int(page.where.text().split(" ")[0])


def test_the_core_pages_cover_every_row_once_even_when_rows_share_a_time(tmp_path):
    """Keyset paging on (created, id): resources registered in the same millisecond are neither
    skipped nor repeated; a filtered evidence walk ends with exactly the entries that match."""
    import dataclasses
    import uuid
    from datetime import datetime, timezone

    from appliance.clock import FixedClock
    from appliance.domain.catalog import RESOURCE_URN
    from appliance.services.catalog import resource_store
    from bench.gui_data import seed_csv

    node = Node.init(tmp_path / "home", PASSPHRASE.encode(), name="n", kdf=KDF_PROFILES["minimum"](),
                     clock=FixedClock(datetime(2026, 12, 1, tzinfo=timezone.utc)))
    try:
        node.resources.allowed_roots = [tmp_path]
        first = node.resources.register(seed_csv(tmp_path))

        def clones(conn) -> None:
            for i in range(249):
                r = dataclasses.replace(first.resource, id=RESOURCE_URN + str(uuid.uuid4()), source=f"x#{i}",
                                        title=f"同一时刻-{i}")
                resource_store.insert_resource(conn, r)

        node.store.db.write(clones)
        seen, after = [], None
        while page := node.resources.page(limit=100, after=after):
            seen += [r.id for r in page]
            after = page[-1].id
        assert len(seen) == len(set(seen)) == node.resources.count() == 250
        assert seen == sorted(seen, reverse=True), "one time: newest first falls back to the id"
        assert node.resources.count(text="同一时刻-1") == 1 + 10 + 100  # 1, 10-19, 100-199
        for i in range(300):
            node.evidence.record("settings.changed", f"urn:test:{i % 3}")
        found, before = [], None
        while page := node.evidence.page(before=before, limit=40, text="urn:test:2"):
            found += page
            before = page[-1].index
        assert len(found) == node.evidence.count(text="urn:test:2") == 100
        assert all(e.subject == "urn:test:2" for e in found)
    finally:
        node.close()
