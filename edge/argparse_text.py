"""argparse's own words ("usage:", "options", "error: the following arguments are required") in the
user's language. argparse looks its messages up through ``gettext`` at the moment it shows them;
this hands those lookups to dsnode's catalogs (``argparse.<English message>`` keys), so help pages
and usage errors read in Chinese as the rest of the CLI does. Messages without a translation stay
as argparse wrote them."""

from __future__ import annotations

import argparse

from appliance import i18n


def _gettext(message: str) -> str:
    return i18n.lookup(f"argparse.{message}") or message


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _gettext(singular if n == 1 else plural)


def install() -> None:
    argparse._ = _gettext
    argparse.ngettext = _ngettext
