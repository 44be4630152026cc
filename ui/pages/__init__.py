"""The main window's pages, one module each; :func:`page_keys` names those this node shows, in the
sidebar's order, and :func:`make_page` builds one (its module is imported then: a page that is never
visited costs nothing at launch)."""

from __future__ import annotations

import importlib

KINDS = {  # key: (module, class), in the sidebar's order
    "dashboard": ("ui.pages.dashboard", "DashboardPage"),
    "resources": ("ui.pages.resources", "ResourcesPage"),
    "products": ("ui.pages.products", "ProductsPage"),
    "catalog": ("ui.pages.catalog", "CatalogPage"),
    "demands": ("ui.pages.demands", "DemandsPage"),
    "contracts": ("ui.pages.contracts", "ContractsPage"),
    "transfers": ("ui.pages.transfers", "TransfersPage"),
    "evidence": ("ui.pages.evidence", "EvidencePage"),
    "peers": ("ui.pages.peers", "PeersPage"),
    "operator": ("ui.pages.operator", "OperatorPage"),  # a space operator's node only
    "settings": ("ui.pages.settings", "SettingsPage"),
}


def page_keys(ctx) -> list[str]:
    return [key for key in KINDS if key != "operator" or ctx.node.operator.is_operator]


def make_page(key: str, ctx):
    module, name = KINDS[key]
    return getattr(importlib.import_module(module), name)(ctx)


def pages_for(ctx) -> list:
    """Every page this node shows, built now."""
    return [make_page(key, ctx) for key in page_keys(ctx)]
