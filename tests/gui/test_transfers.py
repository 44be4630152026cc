"""The Transfers page between two members of a real space (the embedded broker), each an app: the
provider pushes a folder to the consumer from its page; both pages say how it moved (pushed,
direct), and the consumer's lists the files received with the delivery's manifest and receipt."""

from __future__ import annotations


from appliance.services.delivery.records import TransferProgress
from tests.deliveries import contract_for, register_folder

FILES = {"readme.txt": "第四产线 / line 4\n".encode() * 10, "sensors/a.bin": bytes(range(256)) * 1500,
         "sensors/b.bin": b"\x07" * 300_000}


def _row(table, column: int, text: str) -> int | None:
    return next((i for i in range(table.rowCount()) if table.item(i, column).text() == text), None)


def test_the_provider_pushes_a_folder_from_its_page_and_the_consumer_sees_its_files(qtbot, space, tmp_path, english):
    provider, consumer = space.member("provider"), space.member("consumer")
    data = tmp_path / "data"
    (data / "Line 4").mkdir(parents=True)
    provider.resources.allowed_roots = [data]
    rid = register_folder(provider, data / "Line 4", FILES)
    contract_for(space, provider, consumer, [rid], "四号线文件")
    provider_app, consumer_app = space.app_for(provider), space.app_for(consumer)

    mine = consumer_app.window.show_page("transfers")
    mine.safe_refresh()
    assert mine.agreements.count() == 1 and mine.start_b.isVisibleTo(mine) and not mine.push_b.isVisibleTo(mine)
    assert "(you receive)" in mine.agreements.itemText(0)

    page = provider_app.window.show_page("transfers")
    page.safe_refresh()
    assert page.agreements.count() == 1, "the provider's agreement in force can be pushed"
    assert "四号线文件" in page.agreements.itemText(0) and "(you deliver)" in page.agreements.itemText(0)
    assert page.push_b.isVisibleTo(page) and not page.start_b.isVisibleTo(page)
    page.push_b.click()
    qtbot.waitUntil(lambda: page.safe_refresh() or page.list.item(0, 3).text() == "done", timeout=60000)
    assert page.list.item(0, 1).text() == "provider"
    assert page.list.item(0, 5).text() == "pushed by the provider, direct"
    assert page.agreements.count() == 0, "delivered: nothing more to push"

    qtbot.waitUntil(lambda: mine.safe_refresh() or mine.received.rowCount() == len(FILES), timeout=30000)
    assert mine.list.item(0, 5).text() == "pushed by the provider, direct"
    assert mine.agreements.count() == 0
    names = [mine.received.item(i, 0).text() for i in range(mine.received.rowCount())]
    assert sorted(names) == sorted(FILES), "one row per file of the folder, by its name"
    assert mine.received.item(_row(mine.received, 0, "sensors/a.bin"), 1).text() == "375.0 KB"
    assert mine.received.item(_row(mine.received, 0, "readme.txt"), 1).text() == f"{len(FILES['readme.txt'])} bytes"
    said = mine.delivery.text()  # the newest delivery's manifest and receipt, without a click
    total = sum(map(len, FILES.values())) / 1024
    assert said.startswith(f"Manifest signed by the provider: 3 objects, {total:.1f} KB in all"), said
    assert "Receipt signed by the consumer on 20" in said, said
    mine.received.selectRow(2)
    mine.safe_refresh()
    assert [i.row() for i in mine.received.selectionModel().selectedRows()] == [2], "the chosen object stays chosen"

    tid = mine.list.item(0, 0).data(0x0100)  # the rate and time left said are the ones the event carries
    mine.on_progress(TransferProgress(tid, 1, 4, 25 << 20, 100 << 20))
    assert mine.list.item(0, 6).text() == "", "no rate known yet: nothing said"
    mine.on_progress(TransferProgress(tid, 2, 4, 50 << 20, 100 << 20, 3 << 20, 75.0))
    assert mine.list.item(0, 6).text() == "3.0 MB/s, 1 min 15 s left"
    assert mine.bars[tid].value() == 2
    mine.on_progress(TransferProgress(tid, 3, 4, 75 << 20, 100 << 20, 512.0, None))
    assert mine.list.item(0, 6).text() == "512 bytes/s"


def test_both_pages_in_chinese_say_how_the_push_went_without_english_left(qtbot, space, tmp_path, zh):
    from tests.gui.test_language import english_left

    provider, consumer = space.member("provider"), space.member("consumer")
    data = tmp_path / "data"
    (data / "Line 4").mkdir(parents=True)
    provider.resources.allowed_roots = [data]
    contract_for(space, provider, consumer, [register_folder(provider, data / "Line 4", FILES)], "四号线文件")
    provider_app, consumer_app = space.app_for(provider), space.app_for(consumer)
    page = provider_app.window.show_page("transfers")
    page.safe_refresh()
    assert page.push_b.text() == "推送给使用方" and not english_left(page), english_left(page)
    page.push_b.click()
    mine = consumer_app.window.show_page("transfers")
    qtbot.waitUntil(lambda: mine.safe_refresh() or mine.received.rowCount() == len(FILES), timeout=60000)
    qtbot.waitUntil(lambda: page.safe_refresh() or page.list.item(0, 3).text() == "已完成", timeout=30000)
    assert page.list.item(0, 5).text() == mine.list.item(0, 5).text() == "提供方推送，直连"
    assert mine.delivery.text().startswith("提供方签名的清单：3 个数据对象")
    assert not english_left(mine) and not english_left(page), (english_left(mine), english_left(page))
