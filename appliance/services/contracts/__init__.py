"""Contracts: DSP contract negotiation, signed ODRL agreements, approvals (and, later, demands)."""

from appliance.services.contracts.approvals import Rule
from appliance.services.contracts.negotiation import ContractService

__all__ = ["ContractService", "Rule"]
