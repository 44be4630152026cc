"""The operator page's members, through a real operator node and a real member (the embedded
broker): the member is listed, the operator revokes it from the page (a reason, a confirmation that
names it), its row says revoked, and the member's own app shows the space as revoked."""

from __future__ import annotations


from appliance import i18n
from tests.gui.test_language import english_left
from ui import dialogs


def _revoke_from_the_page(qtbot, space, reason: str) -> tuple:
    member = space.new_node("member", "质检站", "某某检测技术有限公司")
    space.join(member)
    operator_app, member_app = space.app_for(space.operator), space.app_for(member)
    page = operator_app.window.show_page("operator")
    members = page.members
    qtbot.waitUntil(lambda: page.safe_refresh() or members.list.rowCount() == 1, timeout=20000)
    assert [members.list.item(0, j).text() for j in (0, 1)] == ["质检站", "某某检测技术有限公司"]
    assert members.list.item(0, 2).toolTip() == member.identity.did, "the full id in the tooltip"
    assert members.list.item(0, 6).text() == i18n.t("ui.state.membership.member")
    assert not members.revoke_b.isEnabled(), "nothing chosen, nothing to revoke"
    members.list.selectRow(0)
    assert members.revoke_b.isEnabled()
    members.revoke()
    dialog = members.revoke_dialog
    ok = _child(dialog, "revoke_ok")
    assert not ok.isEnabled(), "a reason is required"
    reason_edit = _child(dialog, "revoke_reason")
    reason_edit.setText("   ")
    assert not ok.isEnabled(), "blanks are no reason"
    reason_edit.setText(reason)
    assert ok.isEnabled()
    return member, member_app, page, dialog, ok


def _child(root, name: str):
    from PySide6.QtWidgets import QWidget

    return next(w for w in root.findChildren(QWidget) if w.objectName() == name)


def _finish(qtbot, space, member, member_app, page, ok) -> None:
    members = page.members
    ok.click()
    qtbot.waitUntil(lambda: members.list.item(0, 6).text().startswith(i18n.t("ui.state.membership.revoked")),
                    timeout=20000)
    assert members.list.item(0, 5).text() == "-", "a revoked member's credential counts for nothing"
    members.list.selectRow(0)
    assert not members.revoke_b.isEnabled(), "a revoked member cannot be revoked again"
    assert [m.status for m in space.operator.operator.members()] == ["revoked"]
    dashboard = member_app.window.show_page("dashboard")
    qtbot.waitUntil(lambda: dashboard.safe_refresh() or dashboard.spaces.item(0, 1).text()
                    == i18n.t("ui.state.membership.revoked"), timeout=20000)
    assert space.status(member) == "revoked"


def test_the_operator_revokes_a_member_from_the_page_and_the_member_sees_it(qtbot, space, english):
    member, member_app, page, dialog, ok = _revoke_from_the_page(qtbot, space, "left the association")
    said = _child(dialog, "revoke_what").text()
    assert "质检站 (某某检测技术有限公司)" in said, "the confirmation names the member"
    assert "revocation list" in said and "no longer sync or make contracts" in said
    _finish(qtbot, space, member, member_app, page, ok)
    assert not [d for d in dialogs.shown if d.objectName() in ("error_dialog", "bug_dialog")]
    assert "left the association" in page.members.list.item(0, 6).toolTip()


def test_in_chinese_the_members_and_the_revocation_have_no_english_left(qtbot, space, zh):
    member, member_app, page, dialog, ok = _revoke_from_the_page(qtbot, space, "已退出协会")
    assert not english_left(dialog), english_left(dialog)
    assert not english_left(page), english_left(page)
    _finish(qtbot, space, member, member_app, page, ok)
    assert not english_left(page), english_left(page)


def test_a_grade_change_from_the_page_reaches_the_members_credential(qtbot, space, english):
    member = space.member("member")
    page = space.app_for(space.operator).window.show_page("operator")
    members = page.members
    qtbot.waitUntil(lambda: page.safe_refresh() or members.list.rowCount() == 1, timeout=20000)
    assert members.list.item(0, 3).text() == "grade 1"
    members.list.selectRow(0)
    members.change_grade()
    members.grade_dialog.intValueSelected.emit(3)
    qtbot.waitUntil(lambda: members.list.item(0, 3).text() == "grade 3", timeout=20000)
    qtbot.waitUntil(lambda: member.sync.space("test-space").credential["credentialSubject"]["grade"] == 3,
                    timeout=20000)


def test_revoking_a_member_revoked_meanwhile_says_so_in_a_dialog(qtbot, space, english):
    member, member_app, page, dialog, ok = _revoke_from_the_page(qtbot, space, "left the association")
    space.operator.operator.revoke(member.identity.did, "revoked from the command line")
    ok.click()
    qtbot.waitUntil(lambda: any(d.objectName() == "error_dialog" for d in dialogs.shown), timeout=20000)
    assert not [d for d in dialogs.shown if d.objectName() == "bug_dialog"], "a core error, not a bug"
    assert page.members.list.item(0, 6).text().startswith("revoked"), "the page shows what is true now"
    assert "revoked from the command line" in page.members.list.item(0, 6).toolTip()
