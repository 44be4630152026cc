"""The main window's pages, one module each; :func:`pages_for` names those this node shows."""

from __future__ import annotations


def pages_for(ctx) -> list:
    from ui.pages.catalog import CatalogPage
    from ui.pages.contracts import ContractsPage
    from ui.pages.dashboard import DashboardPage
    from ui.pages.demands import DemandsPage
    from ui.pages.evidence import EvidencePage
    from ui.pages.operator import OperatorPage
    from ui.pages.peers import PeersPage
    from ui.pages.products import ProductsPage
    from ui.pages.resources import ResourcesPage
    from ui.pages.settings import SettingsPage
    from ui.pages.transfers import TransfersPage

    kinds = [DashboardPage, ResourcesPage, ProductsPage, CatalogPage, DemandsPage, ContractsPage, TransfersPage,
             EvidencePage, PeersPage]
    if ctx.node.operator.is_operator:
        kinds.append(OperatorPage)
    kinds.append(SettingsPage)
    return [kind(ctx) for kind in kinds]
