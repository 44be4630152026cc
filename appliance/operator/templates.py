"""Standard contract and offer templates, published retained on ``operator/templates/{id}``.

The space's templates are the contract templates in ``assets/templates/contracts/`` and the offer
templates in ``assets/templates/offers/`` (the catalog's ODRL policy templates); members keep the
latest of each so they are at hand offline.
"""

from __future__ import annotations

import json
import re

from appliance.domain.membership import MessageType
from appliance.operator.space import OperatorContext
from appliance.resources import assets_dir

TEMPLATE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)


def standard_templates() -> dict[str, dict]:
    """template id → template, from the assets (contract templates first; ids must be unique)."""
    found: dict[str, dict] = {}
    for folder, kind in (("contracts", "contract"), ("offers", "offer")):
        for path in sorted((assets_dir() / "templates" / folder).glob("*.json")):
            template = json.loads(path.read_text(encoding="utf-8"))
            template_id = str(template.get("id") or path.stem)
            if TEMPLATE_ID_RE.fullmatch(template_id) and template_id not in found:
                found[template_id] = {"kind": kind, **template, "id": template_id}
    return found


def publish_templates(ctx: OperatorContext, conn) -> int:
    """Queue the retained publication of every standard template (inside the caller's transaction)."""
    space_id = ctx.space(conn).space_id
    templates = standard_templates()
    for template_id, template in templates.items():
        ctx.sync.publish(conn, space_id, topic=f"operator/templates/{template_id}", type=str(MessageType.TEMPLATE),
                         body=template, retained=True)
    return len(templates)
