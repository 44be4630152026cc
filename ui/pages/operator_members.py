"""The operator page's members: who is in the space, with which grade and credential; revoking a
member (a reason, a confirmation, then the signed revocation list) and changing a member's grade."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QInputDialog, QLabel, QLayout, QLineEdit,
                               QVBoxLayout, QWidget)

from appliance.domain.membership import GRADE_MAX, GRADE_MIN
from appliance.i18n import t
from ui.dialogs import show_error
from ui.pages.base import button, empty_hint, fill, fit_height, selected_key, short, state_text, table
from ui.tasks import run_task

ENDED = QColor("#888888")


def when(ts: str | None) -> str:
    return ts[:16].replace("T", " ") if ts else "-"


class MembersSection(QWidget):
    """The members table of :class:`~ui.pages.operator.OperatorPage` (``page``) with its actions."""

    def __init__(self, page) -> None:
        super().__init__()
        self.page = page
        self.node = page.node
        self.rows: dict[str, object] = {}  # did -> admission.Member shown
        self.revoke_dialog: QDialog | None = None
        self.grade_dialog: QInputDialog | None = None
        self.busy = False
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(QLabel(t("ui.opm.members")))
        self.list = table([t("ui.op.col.name"), t("ui.op.col.org"), t("ui.opm.col.did"), t("ui.opm.col.grade"),
                           t("ui.opm.col.admitted"), t("ui.opm.col.valid_until"), t("ui.opm.col.status")],
                          "members", stretch=0)
        self.list.itemSelectionChanged.connect(self._enable)
        v.addWidget(self.list)
        row = QHBoxLayout()
        self.revoke_b = button("ui.opm.revoke", self.revoke, name="revoke")
        self.grade_b = button("ui.opm.grade", self.change_grade, name="change_grade")
        row.addWidget(self.revoke_b)
        row.addWidget(self.grade_b)
        row.addStretch(1)
        v.addLayout(row)
        self.empty = empty_hint("ui.opm.none")
        v.addWidget(self.empty)
        self._enable()

    def refresh(self) -> None:
        members = self.node.operator.members()
        members.sort(key=lambda m: (m.status != "member", m.member_since))  # those in the space first
        self.rows = {m.did: m for m in members}
        fill(self.list, [[m.name, m.org or "-", short(m.did, 16), t("ui.opm.grade_value", m.grade),
                          when(m.member_since), self._valid_until(m), self._status(m)] for m in members],
             [m.did for m in members])
        for i, m in enumerate(members):
            self.list.item(i, 2).setToolTip(m.did)
            if m.status != "member":
                for j in range(self.list.columnCount()):
                    self.list.item(i, j).setForeground(ENDED)
                if m.reason:
                    self.list.item(i, 6).setToolTip(t("ui.opm.ended_because", when(m.ended), m.reason))
        fit_height(self.list, 8)
        self.list.setVisible(bool(members))
        self.empty.setVisible(not members)
        self._enable()

    @staticmethod
    def _valid_until(m) -> str:
        return when(m.credential.get("validUntil")) if m.status == "member" else "-"

    @staticmethod
    def _status(m) -> str:
        text = state_text("membership", m.status)
        return t("ui.opm.status_since", text, when(m.ended)) if m.ended else text

    def selected(self):
        did = selected_key(self.list)
        member = self.rows.get(did) if did is not None else None
        return member if member is not None and member.status == "member" else None

    def _enable(self) -> None:
        can = self.selected() is not None and not self.busy
        self.revoke_b.setEnabled(can)
        self.grade_b.setEnabled(can)

    def _who(self, m) -> str:
        return t("ui.opm.who", m.name, m.org) if m.org else m.name

    # --- revoking -------------------------------------------------------------------------------

    def revoke(self) -> None:
        member = self.selected()
        if member is None:
            return
        dialog = QDialog(self)
        dialog.setObjectName("revoke_dialog")
        dialog.setWindowTitle(t("ui.opm.revoke_title"))
        v = QVBoxLayout(dialog)
        what = QLabel(t("ui.opm.revoke_confirm", self._who(member)))
        what.setObjectName("revoke_what")
        what.setWordWrap(True)
        what.setMinimumWidth(460)  # a wrapped label's own size hint is too narrow and cuts its last lines
        v.addWidget(what)
        v.addWidget(QLabel(t("ui.opm.reason")))
        reason = QLineEdit()
        reason.setObjectName("revoke_reason")
        reason.setPlaceholderText(t("ui.opm.reason_hint"))
        v.addWidget(reason)
        buttons = QDialogButtonBox()
        ok = buttons.addButton(t("ui.opm.revoke_do"), QDialogButtonBox.ButtonRole.AcceptRole)
        ok.setObjectName("revoke_ok")
        ok.setEnabled(False)
        buttons.addButton(t("ui.cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        reason.textChanged.connect(lambda text: ok.setEnabled(bool(text.strip())))  # a reason is required
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        v.addWidget(buttons)
        dialog.accepted.connect(lambda: self._revoke(member.did, reason.text().strip()))
        v.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self.revoke_dialog = dialog
        dialog.open()

    def _revoke(self, did: str, reason: str) -> None:
        if not reason:
            return
        self._run(lambda _progress: self.node.operator.revoke(did, reason))

    # --- grade ----------------------------------------------------------------------------------

    def change_grade(self) -> None:
        member = self.selected()
        if member is None:
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("grade_dialog")
        dialog.setWindowTitle(t("ui.opm.grade_title"))
        dialog.setInputMode(QInputDialog.InputMode.IntInput)
        dialog.setIntRange(GRADE_MIN, GRADE_MAX)
        dialog.setIntValue(member.grade)
        dialog.setLabelText(t("ui.opm.grade_ask", self._who(member), GRADE_MIN, GRADE_MAX))
        dialog.setOkButtonText(t("ui.ok"))
        dialog.setCancelButtonText(t("ui.cancel"))
        dialog.intValueSelected.connect(lambda grade: self._set_grade(member, grade))
        self.grade_dialog = dialog
        dialog.open()

    def _set_grade(self, member, grade: int) -> None:
        if grade != member.grade:
            self._run(lambda _progress: self.node.operator.set_grade(member.did, grade))

    # --- the worker -----------------------------------------------------------------------------

    def _run(self, fn) -> None:
        self.busy = True
        self._enable()
        run_task(fn, lambda _result: self._finished(None), self._finished)

    def _finished(self, error: BaseException | None) -> None:
        self.busy = False
        if self.page.ctx.closed:
            return
        if error is not None:
            show_error(self.page, error)
        self.page.safe_refresh()
