"""The offer editor: a template, its parameters as a form, and the plain-language summary of the
terms as you type (or what contradicts, when they do not fit). Used for new products and counter-offers."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from appliance.domain.odrl import summarize, to_jsonld
from appliance.errors import ApplianceError
from appliance.i18n import get_lang, t

OK_STYLE = "background: #f4f6f8; padding: 8px"
BAD_STYLE = "background: #fdecea; color: #922b21; padding: 8px"


class OfferEditor(QWidget):
    def __init__(self, products, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.products = products
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.form = QFormLayout()
        self.template = QComboBox()
        self.template.setObjectName("template")
        for tpl in products.templates.all():
            self.template.addItem(tpl.title.get(get_lang()) or tpl.title.get("en") or tpl.id, tpl.id)
        self.template.currentIndexChanged.connect(self._template_changed)
        self.form.addRow(t("ui.pr.template"), self.template)
        outer.addLayout(self.form, 3)
        side = QVBoxLayout()
        side.addWidget(QLabel(t("ui.pr.summary")))
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.summary.setMinimumWidth(260)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        side.addWidget(self.summary, 1)
        outer.addLayout(side, 2)
        self.param_edits: dict[str, QLineEdit] = {}
        self._template_changed()

    def _template_changed(self) -> None:
        for edit in self.param_edits.values():
            self.form.removeRow(edit)
        self.param_edits = {}
        tid = self.template.currentData()
        if tid is None:
            return
        for p in self.products.templates.get(tid).parameters:
            edit = QLineEdit("" if p.default is None else str(p.default))
            edit.setObjectName(f"param_{p.name}")
            edit.textChanged.connect(self._update_summary)
            self.param_edits[p.name] = edit
            self.form.addRow(p.text(get_lang()), edit)
        self._update_summary()

    def offer(self):
        """The offer as filled in; OfferTemplateError or PolicyInvalid when it does not fit."""
        params = {k: e.text().strip() for k, e in self.param_edits.items() if e.text().strip()}
        return self.products.offer_from_template(self.template.currentData(), params)

    def offer_jsonld(self) -> dict:
        return to_jsonld(self.offer().policy, context=False)

    def _update_summary(self) -> None:
        try:
            self.summary.setText(summarize(self.offer().policy, get_lang()))
            self.summary.setStyleSheet(OK_STYLE)
        except ApplianceError as e:  # a parameter that does not fit, or terms that contradict each other
            self.summary.setStyleSheet(BAD_STYLE)
            self.summary.setText(e.message())
