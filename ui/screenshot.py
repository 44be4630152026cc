"""``python -m ui.screenshot OUT_DIR``: the main pages of a demo node, as PNG files, for the docs.

A throwaway space on this machine (the embedded broker, an operator and this node, admitted at
once), a few registered files with Chinese data, a product listed in the space; then the app hosts
the node and each page is rendered into ``OUT_DIR/<page>-<lang>.png``. Run it under Xvfb
(``xvfb-run -a python -m ui.screenshot docs/screenshots``) or with ``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from appliance import i18n
from appliance.domain.sync import SyncTimers
from appliance.node import KDF_PROFILES, Node
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.settings import Settings

PASSPHRASE = b"demo passphrase 2026"
TIMERS = SyncTimers(backoff_initial=0.1, backoff_max=1.0, reconcile_poll=1.0, stop_timeout=1.0)
ROWS = ["工单号,车间,操作员,手机号,温度,时间",
        *(f"W{1000 + i},注塑{i % 3 + 1}车间,{'张李王赵'[i % 4]}师傅,1380013{i:04d},{210 + i % 7}.5,2026-11-0{i % 9 + 1}"
          for i in range(40))]


def _wait(predicate, seconds: float = 15.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def build_demo(workdir: Path):
    """(operator, broker, this node's Node, its product, the other member): a space with this node
    admitted, a product of its own and another member (B) with a product of its own."""
    from edge.broker_process import free_port, start_embedded_broker

    kdf = KDF_PROFILES["minimum"]()
    port = free_port()
    operator = Node.init(workdir / "operator", PASSPHRASE, name=i18n.t("demo.space.operator_name"),
                         org=i18n.t("demo.space.operator_org"), kdf=kdf, sync_timers=TIMERS)
    operator.operator.create_space(space_id="auto-parts", name=i18n.t("demo.space.space_name"),
                                   broker_host="127.0.0.1", broker_port=port, policies=Policies(auto_admit=True))
    broker = start_embedded_broker(operator, ListenerConfig(port=port), workdir / "broker")
    operator.start()
    node = Node.init(workdir / "home", PASSPHRASE, name=i18n.t("demo.space.node_a"), org=i18n.t("demo.space.org_a"),
                     kdf=kdf, sync_timers=TIMERS)
    node.membership.join(operator.operator.invite(org=i18n.t("demo.space.org_a")).code())
    data = workdir / "data"
    data.mkdir()
    for name in ("注塑温度-11月.csv", "设备点检记录.csv"):
        (data / name).write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    node.resources.allowed_roots = [data]
    first = node.resources.register(data / "注塑温度-11月.csv").resource.id
    node.resources.register(data / "设备点检记录.csv")
    node.resources.set_column_rule(first, {"column": "手机号", "rule": "mask"})
    node.resources.set_column_rule(first, {"column": "操作员", "rule": "pseudonymise"})
    node.resources.label(first, category="important", sensitivity=3)
    template = node.products.templates.all()[0].id
    product = node.products.create(title=i18n.t("demo.space.dataset_title"), resource_ids=[first],
                                   offers=[node.products.offer_from_template(template)])
    node.close()
    node = Node.open(workdir / "home", PASSPHRASE, sync_timers=TIMERS)
    node.resources.allowed_roots = [data]
    other = Node.init(workdir / "other", PASSPHRASE, name=i18n.t("demo.space.node_b"), org=i18n.t("demo.space.org_b"),
                      kdf=kdf, sync_timers=TIMERS)
    other.membership.join(operator.operator.invite(org=i18n.t("demo.space.org_b")).code())
    other.resources.allowed_roots = [data]
    (data / "来料检验.csv").write_text("\n".join(ROWS * 50) + "\n", encoding="utf-8")
    theirs = other.resources.register(data / "来料检验.csv", mode="hosted").resource.id
    other.resources.set_masking(theirs, [{"column": "手机号", "rule": "mask"},
                                         {"column": "操作员", "rule": "pseudonymise"}])
    offered = other.products.create(title="来料检验记录（月度）", resource_ids=[theirs],
                                    offers=[other.products.offer_from_template("free-trial")])
    other.start()
    _wait(lambda: other.sync.space("auto-parts").status == "member")
    other.products.request_listing(offered.id, "auto-parts")
    other.contracts.add_rule({"dataset": offered.id})
    return operator, broker, node, product.id, other, offered.id


def play(node, operator, other, product_id: str, offered_id: str) -> None:
    """Some life in the space: listings approved, a contract with B delivered, B's request waiting."""
    node.products.request_listing(product_id, "auto-parts")
    _wait(lambda: len(operator.operator.listings("pending")) >= 2)
    for request in operator.operator.listings("pending"):
        operator.operator.approve_listing(request.id)
    _wait(lambda: any(e.dataset_id == offered_id for e in node.sync.catalog("auto-parts")))
    cid = node.contracts.request("auto-parts", offered_id)
    _wait(lambda: node.contracts.get(cid).state == "FINALIZED")
    tid = node.transfers.request(cid)
    _wait(lambda: node.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), 30)
    _wait(lambda: any(e.dataset_id == product_id for e in other.sync.catalog("auto-parts")))
    other.contracts.request("auto-parts", product_id)
    _wait(lambda: bool(node.contracts.pending()))
    other.demands.publish("auto-parts", "注塑机温度与良品率", keywords=["注塑机温度", "良品率"], purpose="工艺优化")
    _wait(lambda: bool(node.demands.list("auto-parts")))


def newcomer(workdir: Path, operator) -> Node:
    """A third organisation asks to join while the operator reviews each request by hand."""
    operator.operator.set_policies(auto_admit=False)
    late = Node.init(workdir / "late", PASSPHRASE, name="质检站", org="某某检测技术有限公司",
                     kdf=KDF_PROFILES["minimum"](), sync_timers=TIMERS)
    late.membership.join(operator.operator.invite(org="某某检测技术有限公司").code())
    late.start()
    _wait(lambda: bool(operator.operator.admissions("pending")))
    return late


def shoot(window, pages, lang: str, out: Path, size: tuple[int, int]) -> None:
    window.build()
    window.resize(*size)
    window.show()
    for i, page in enumerate(window.pages):
        if page.key not in pages:
            continue
        window.sidebar.setCurrentRow(i)
        if page.key in ("contracts", "transfers"):
            page.list.selectRow(0)
        if page.key == "catalog":
            page.results.selectRow(0)
        if page.key == "resources":
            page.list.selectRow(page.model.rowCount() - 1)  # newest first: the first registered, with its masking
            page.detail.setCurrentIndex(3)
        _wait(lambda: False, 0.6)
        window.grab().save(str(out / f"{page.key}-{lang}.png"))
        if page.key == "settings":  # each tab: settings-<tab>-<lang>.png
            for tab in range(1, page.tabs.count()):
                page.tabs.setCurrentIndex(tab)
                _wait(lambda: False, 0.4)
                window.grab().save(str(out / f"settings-{page.tabs.widget(tab).objectName()}-{lang}.png"))
            page.tabs.setCurrentIndex(0)


def shoot_wizard(lang: str, out: Path, home: Path, size: tuple[int, int] = (640, 520)) -> None:
    """The first-run wizard's pages: wizard-<page>-<lang>.png (identity, passphrase, space, restore)."""
    from ui.wizard import FirstRunWizard

    wizard = FirstRunWizard(Settings(home=home, kdf_profile="minimum"))
    wizard.resize(*size)
    wizard.show()
    wizard.secret.first.setText("仓库一号 passphrase 2026")
    wizard.secret.second.setText("仓库一号 passphrase 2026")
    wizard.secret.understood.setChecked(True)
    wizard.secret.recovery.setChecked(True)
    for name in ("identity", "passphrase", "space"):
        _wait(lambda: False, 0.3)
        wizard.grab().save(str(out / f"wizard-{name}-{lang}.png"))
        wizard.next()
    wizard.restart()
    wizard.identity.restore.setChecked(True)
    wizard.next()
    _wait(lambda: False, 0.3)
    wizard.grab().save(str(out / f"wizard-restore-{lang}.png"))
    wizard.hide()
    wizard.deleteLater()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.screenshot")
    parser.add_argument("out", type=Path)
    parser.add_argument("--lang", action="append", choices=i18n.LANGS)
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))
    app = QApplication.instance() or QApplication(["dsnode"])
    from ui.app import DesktopApp, apply_font

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dsnode-shots-") as tmp:
        os.environ["DSNODE_ALLOWED_ROOTS"] = str(Path(tmp) / "data")
        os.environ["DSNODE_CONFIG"] = str(Path(tmp) / "dsnode.toml")  # the settings tabs read this, not the user's
        i18n.set_lang((args.lang or ["zh_CN"])[0])
        operator, broker, node, product_id, other, offered_id = build_demo(Path(tmp))
        desktop = DesktopApp(Settings(home=Path(tmp) / "home", kdf_profile="minimum"))
        operating = DesktopApp(Settings(home=Path(tmp) / "operator", kdf_profile="minimum"))
        late = None
        try:
            desktop.run(node)
            _wait(lambda: any(s.connected and s.membership == "member" for s in node.sync.status()))
            play(node, operator, other, product_id, offered_id)
            node.contracts.add_rule({"dataset": product_id, "orgs": [i18n.t("demo.space.org_b")], "min_grade": 2})
            late = newcomer(Path(tmp), operator)
            operating.run(operator)
            for lang in args.lang or ["zh_CN", "en"]:
                i18n.set_lang(lang)
                apply_font(app)
                shoot(desktop.window, {p.key for p in desktop.window.pages}, lang, args.out, (width, height))
                desktop.window.hide()
                shoot(operating.window, {"operator"}, lang, args.out, (width, height))
                operating.window.hide()
                shoot_wizard(lang, args.out, Path(tmp) / f"fresh-{lang}")
        finally:
            desktop.stop()
            operating.stop()
            if late is not None:
                late.close()
            other.close()
            operator.close()
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
