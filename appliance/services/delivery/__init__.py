"""Data delivery under a finalized agreement (issue 12): the DSP transfer process messages
(``messages``), the provider's signed manifest and the consumer's signed receipt (``manifest``).
The state machine is ``appliance.domain.transfer``; the channel between the two nodes is
``appliance.net.channel``."""

from appliance.services.delivery import manifest, messages

__all__ = ["manifest", "messages"]
