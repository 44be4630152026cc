"""Settings kept in the node's store: the spaces this node is in (leave one, join another) and the
auto-approval rules for contract requests (``node.contracts.rules`` / ``add_rule``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QSpinBox, QVBoxLayout, QWidget)

from appliance.errors import ConfigError, LocalText
from appliance.i18n import t
from ui.dialogs import _keep, show_error
from ui.join_dialog import ask_join
from ui.pages.base import (button, empty_hint, fill, fit_height, peer_name, selected_key, short, state_text,
                           table)


def _hint(key: str, *args) -> QLabel:
    label = QLabel(t(key, *args))
    label.setWordWrap(True)
    label.setStyleSheet("color: #555")
    return label


class SpacesTab(QWidget):
    """Each space: name, operator, broker and TLS; leave one; join another (the window's join flow)."""

    def __init__(self, page) -> None:
        super().__init__()
        self.setObjectName("spaces")
        self.page, self.node = page, page.node
        v = QVBoxLayout(self)
        self.list = table([t("ui.dash.col.space"), t("ui.sset.col.id"), t("ui.dash.col.membership"),
                           t("ui.sset.col.operator"), t("ui.sset.col.broker"), t("ui.sset.col.tls")], "space_settings",
                          stretch=0)
        self.list.itemSelectionChanged.connect(self._selected)
        v.addWidget(self.list)
        self.empty = empty_hint("ui.dash.no_space")
        v.addWidget(self.empty)
        row = QHBoxLayout()
        row.addWidget(button("ui.dash.join", lambda: ask_join(page.ctx.window), name="join_space"))
        self.leave_b = button("ui.sset.leave", self.leave)
        self.ca_b = button("ui.sset.save_ca", self.save_ca)
        row.addWidget(self.leave_b)
        row.addWidget(self.ca_b)
        row.addStretch(1)
        v.addLayout(row)
        v.addWidget(_hint("ui.sset.spaces_hint"))
        v.addStretch(1)

    def refresh(self) -> None:
        spaces = self.node.sync.spaces()
        fill(self.list, [[s.name, s.space_id, state_text("membership", s.status),
                          peer_name(self.node, s.space_id, s.operator_did),
                          f"{s.broker_host}:{s.broker_port}",
                          t("ui.sset.tls_ca") if s.tls_ca_pem else t("ui.join.no_tls")] for s in spaces],
             [s.space_id for s in spaces])
        fit_height(self.list, 8)
        self.list.setVisible(bool(spaces))
        self.empty.setVisible(not spaces)
        self._selected()

    def _space(self):
        sid = selected_key(self.list)
        return next((s for s in self.node.sync.spaces() if s.space_id == sid), None) if sid else None

    def _selected(self) -> None:
        s = self._space()
        self.leave_b.setEnabled(s is not None and s.status in ("member", "joining", "revoked"))
        self.ca_b.setEnabled(s is not None and bool(s.tls_ca_pem))

    def leave(self) -> None:
        s = self._space()
        if s is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, t("ui.sset.leave"), t("ui.sset.leave_confirm", s.name, s.space_id),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("leave_confirm")
        box.button(QMessageBox.StandardButton.Yes).setText(t("ui.sset.leave"))
        box.button(QMessageBox.StandardButton.Cancel).setText(t("ui.cancel"))
        box.accepted.connect(lambda: self.page.act(self.node.membership.leave, s.space_id))
        _keep(box)
        box.open()

    def save_ca(self) -> None:
        s = self._space()
        if s is None or not s.tls_ca_pem:
            return
        path, _ = QFileDialog.getSaveFileName(self, t("ui.sset.save_ca"), str(Path.home() / f"{s.space_id}-ca.pem"))
        if path:
            self.write_ca(s, Path(path))

    def write_ca(self, space, path: Path) -> None:
        try:
            path.write_text(space.tls_ca_pem, encoding="utf-8")
        except OSError as e:
            show_error(self, ConfigError(LocalText("ui.sset.reason.write", str(path), e.strerror or type(e).__name__)))
            return
        self.page.ctx.window.status(t("ui.sset.ca_saved", str(path)))


class RulesTab(QWidget):
    """The auto-approval rules: a request for exactly a listed offer that a rule matches is agreed
    without waiting for a person; every other request waits on the Contracts page."""

    def __init__(self, page) -> None:
        super().__init__()
        self.setObjectName("rules")
        self.page, self.node = page, page.node
        v = QVBoxLayout(self)
        v.addWidget(_hint("ui.rule.intro"))
        self.list = table([t("ui.rule.col.n"), t("ui.col.dataset"), t("ui.rule.col.offer"), t("ui.rule.col.orgs"),
                           t("ui.rule.col.peers"), t("ui.rule.col.grade")], "rules", stretch=1)
        v.addWidget(self.list)
        self.empty = empty_hint("ui.rule.empty")
        v.addWidget(self.empty)
        row = QHBoxLayout()
        row.addWidget(button("ui.rule.add", self.ask_rule, name="add_rule"))
        self.remove_b = button("ui.rule.remove", self.remove)
        self.list.itemSelectionChanged.connect(lambda: self.remove_b.setEnabled(selected_key(self.list) is not None))
        row.addWidget(self.remove_b)
        row.addStretch(1)
        v.addLayout(row)
        v.addWidget(_hint("ui.rule.lasting"))
        v.addStretch(1)

    def refresh(self) -> None:
        rules = self.node.contracts.numbered_rules()
        any_ = t("ui.rule.any")
        fill(self.list, [[n, self._dataset(r.dataset) if r.dataset else any_, r.offer or any_,
                          "、".join(r.orgs) or any_, ", ".join(short(p) for p in r.peers) or any_,
                          t("ui.rule.grade_at_least", r.min_grade) if r.min_grade else any_]
                         for n, r in rules], [n for n, _ in rules])
        fit_height(self.list, 8)
        self.list.setVisible(bool(rules))
        self.empty.setVisible(not rules)
        self.remove_b.setEnabled(selected_key(self.list) is not None)

    def remove(self) -> None:
        rule_id = selected_key(self.list)
        if rule_id is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, t("ui.rule.remove"), t("ui.rule.remove_confirm", rule_id),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("remove_rule_confirm")
        box.button(QMessageBox.StandardButton.Yes).setText(t("ui.rule.remove"))
        box.button(QMessageBox.StandardButton.Cancel).setText(t("ui.cancel"))
        box.accepted.connect(lambda: self.page.act(self.node.contracts.remove_rule, rule_id))
        _keep(box)
        box.open()

    def _dataset(self, dataset_id: str) -> str:
        return next((p.title for p in self.node.products.list() if p.id == dataset_id), short(dataset_id, 20))

    def ask_rule(self) -> QDialog:
        dialog = RuleDialog(self, self.node.products.list())
        dialog.setObjectName("rule_dialog")
        dialog.made.connect(lambda rule: self.page.act(self.node.contracts.add_rule, rule))
        _keep(dialog)
        dialog.open()
        return dialog


class RuleDialog(QDialog):
    made = Signal(object)  # the rule, as the data ``add_rule`` takes

    def __init__(self, parent: QWidget, products) -> None:
        super().__init__(parent)
        self.setWindowTitle(t("ui.rule.add"))
        form = QFormLayout(self)
        self.dataset = QComboBox()
        self.dataset.setObjectName("rule_dataset")
        self.dataset.addItem(t("ui.rule.any_product"), None)
        for p in products:
            self.dataset.addItem(p.title, p.id)
        self.dataset.currentIndexChanged.connect(lambda *_: self._offers(products))
        form.addRow(t("ui.col.dataset"), self.dataset)
        self.offer = QComboBox()
        self.offer.setObjectName("rule_offer")
        form.addRow(t("ui.rule.col.offer"), self.offer)
        self.orgs = QLineEdit()
        self.orgs.setObjectName("rule_orgs")
        self.orgs.setPlaceholderText(t("ui.rule.orgs_hint"))
        form.addRow(t("ui.rule.col.orgs"), self.orgs)
        self.grade = QSpinBox()
        self.grade.setObjectName("rule_grade")
        self.grade.setRange(0, 5)
        self.grade.setSpecialValueText(t("ui.rule.any"))
        form.addRow(t("ui.rule.col.grade"), self.grade)
        buttons = QDialogButtonBox()
        buttons.addButton(t("ui.rule.save"), QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(t("ui.cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._offers(products)
        self.resize(480, 220)

    def _offers(self, products) -> None:
        self.offer.clear()
        self.offer.addItem(t("ui.rule.any_offer"), None)
        product = next((p for p in products if p.id == self.dataset.currentData()), None)
        for o in product.offers if product else ():
            self.offer.addItem(o.template or short(o.uid, 24), o.uid)

    def rule(self) -> dict:
        orgs = [o.strip() for o in self.orgs.text().replace("、", ",").replace("，", ",").split(",") if o.strip()]
        rule = {"dataset": self.dataset.currentData(), "offer": self.offer.currentData(), "orgs": orgs,
                "min_grade": self.grade.value() or None}
        return {k: v for k, v in rule.items() if v not in (None, [])}

    def accept(self) -> None:
        self.made.emit(self.rule())
        super().accept()
