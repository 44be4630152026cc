"""How much one client may make the embedded broker hold: packet size, queued messages, buffered
bytes, subscriptions and sessions. The operator sets them in the ``[broker]`` table of
``dsnode.toml``; the generated mosquitto.conf carries the ones mosquitto has, so both brokers a
space can run on bound the same things."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

MIB = 1024 * 1024


@dataclass(frozen=True)
class BrokerLimits:
    max_packet_size: int = 300_000  # bytes of one packet, either way (mosquitto: max_packet_size)
    max_queued: int = 100_000  # QoS 1 messages waiting per session (mosquitto: max_queued_messages)
    max_queued_bytes: int = 64 * MIB  # payload bytes held per session, waiting or unacknowledged
    max_inflight: int = 1000  # QoS 1 messages unacknowledged each way per client (Receive Maximum;
    # mosquitto: max_inflight_messages); a node keeps 500 of its own in flight
    write_buffer: int = 64 * 1024  # bytes waiting for a slow reader's socket before QoS 0 is dropped
    max_filters_per_subscribe: int = 64  # topic filters in one SUBSCRIBE
    max_subscriptions: int = 256  # topic filters a session holds
    max_sessions_per_account: int = 8  # sessions (connected or kept) under one username

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> BrokerLimits:
        """Limits from a settings table; ValueError naming the first unknown or bad entry."""
        known = {f.name for f in fields(cls)}
        checked: dict[str, int] = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown broker limit {name!r} (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**40:
                raise ValueError(f"broker limit {name} must be a whole number from 1 to 2^40, not {value!r}")
            checked[name] = value
        if checked.get("max_packet_size", cls.max_packet_size) > 268_435_455:
            raise ValueError("broker limit max_packet_size is at most 268435455 (MQTT's largest packet)")
        return cls(**checked)

    def mosquitto_lines(self) -> list[str]:
        return [f"max_queued_messages {self.max_queued}", f"max_queued_bytes {self.max_queued_bytes}",
                f"max_inflight_messages {min(self.max_inflight, 65535)}", f"max_packet_size {self.max_packet_size}"]
