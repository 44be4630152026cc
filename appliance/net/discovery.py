"""Finding other nodes on the local network: DNS-SD over multicast DNS (python-zeroconf).

A node advertises ``_dsnode._tcp.local.`` with a TXT record naming its did, the spaces it is a
member of (comma-separated), its channel port and the hash of its node card. Nothing in an
advertisement is trusted: anyone on the LAN can send one. :class:`PeerDirectory` holds what was
seen and marks a peer verified only when the ``verify`` callable it was given says so (the node
passes one that opens an authenticated :mod:`appliance.net.channel` to the peer with
``expect_did`` set to the advertised did and checks its membership credentials inside).

Multicast goes only where the caller says: every :class:`Zeroconf` here is made with an explicit
list of interface addresses (never "all interfaces"), and a loopback address may not be mixed with
a LAN address, so ``127.0.0.1`` is never announced on a LAN. Timers and the clock are passed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from appliance.crypto.keys import public_key_from_did
from appliance.domain.membership import SPACE_ID_RE
from appliance.errors import ApplianceError, DiscoveryAddressInvalid, DiscoveryUnavailable, LocalText

log = logging.getLogger(__name__)

SERVICE_TYPE = "_dsnode._tcp.local."
TTL = 120  # seconds an advertisement lives without a refresh: a node that vanished is dropped then
RESOLVE_TIMEOUT = 3.0  # seconds to wait for a newly seen service's SRV, TXT and address records
SWEEP_EVERY = 15.0  # seconds between two checks that the services seen still answer
MAX_SPACES = 32
MAX_TEXT = 64  # characters of a name or an organisation shown from a TXT record
MAX_TXT = 1300  # bytes of a whole TXT record looked at (one mDNS packet holds ~1400 after the rest)
_IP_MULTICAST_ALL = 49  # Linux <linux/in.h>; the socket module does not name it
_JUNK_LOG_EVERY = 60.0  # seconds between two log lines about junk from the same service name


def check_interfaces(addresses: Iterable[str]) -> tuple[str, ...]:
    """The IPv4 addresses multicast DNS may use, checked: each one is this computer's, none is a
    wildcard or multicast address, and loopback addresses are not mixed with LAN addresses (the
    same records go out on every interface). Raises :class:`DiscoveryAddressInvalid`."""
    addresses = list(addresses)
    if not addresses:
        raise DiscoveryAddressInvalid("[]", LocalText("discovery.reason.empty"))
    checked: list[str] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise DiscoveryAddressInvalid(str(text)[:80], LocalText("discovery.reason.not_an_address")) from None
        if ip.version != 4:
            raise DiscoveryAddressInvalid(text, LocalText("discovery.reason.ipv6"))
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            raise DiscoveryAddressInvalid(text, LocalText("discovery.reason.not_unicast"))
        if str(ip) not in checked:
            checked.append(str(ip))
    loopback = [a for a in checked if ipaddress.ip_address(a).is_loopback]
    if loopback and len(loopback) != len(checked):
        raise DiscoveryAddressInvalid(", ".join(loopback), LocalText("discovery.reason.loopback_mixed"))
    for address in checked:
        _require_local(address)
    return tuple(checked)


def _require_local(address: str) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((address, 0))
    except OSError:
        raise DiscoveryAddressInvalid(address, LocalText("discovery.reason.not_local")) from None
    finally:
        probe.close()


def _open_zeroconf(addresses: tuple[str, ...]) -> Zeroconf:
    try:
        zc = Zeroconf(interfaces=list(addresses), ip_version=IPVersion.V4Only)
    except OSError as exc:
        raise DiscoveryUnavailable(", ".join(addresses), LocalText("discovery.reason.socket", str(exc))) from None
    if sys.platform.startswith("linux"):
        # zeroconf's shared socket is bound to 0.0.0.0:5353; by default Linux hands it the mDNS traffic
        # of every interface where any program joined the group. Only the groups it joined (on the
        # chosen interfaces) then, so it never hears, and never answers, the other interfaces' queries.
        for reader in getattr(zc.engine, "readers", ()):  # zeroconf internals (pinned version)
            with contextlib.suppress(OSError):
                reader.sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
    return zc


def short_id(did: str) -> str:
    """Eight hex characters naming a did in a service name (so two nodes called alike differ)."""
    return hashlib.sha256(did.encode()).hexdigest()[:8]


def instance_label(name: str, did: str) -> str:
    """The DNS-SD instance label for a node called ``name``: the name without dots or control
    characters, cut to fit the 63-byte label with `` (<short id>)`` after it."""
    suffix = f" ({short_id(did)})"
    clean = "".join(c for c in name if c.isprintable() and c != ".").strip()
    while len((clean + suffix).encode()) > 63:
        clean = clean[:-1]
    return (clean + suffix).strip()


# --- advertising -----------------------------------------------------------------------------


class Advertiser:
    """Announces this node on the given interface addresses until :meth:`close` (which says
    goodbye, so browsers drop it at once rather than after ``ttl``)."""

    def __init__(self, did: str, spaces: Iterable[str], port: int, card_hash: str, interfaces: Iterable[str], *,
                 name: str = "", org: str = "", service_type: str = SERVICE_TYPE, ttl: int = TTL) -> None:
        public_key_from_did(did)  # MalformedDid for a value that is not one
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not a TCP port")
        self.did = did
        self.port = port
        self.interfaces = check_interfaces(interfaces)
        self.service_type = service_type
        self._name, self._org, self._ttl = name[:MAX_TEXT], org[:MAX_TEXT], ttl
        self._spaces, self._card = _checked_spaces(spaces), _checked_card(card_hash)
        self._zc: Zeroconf | None = None
        self._info: ServiceInfo | None = None

    def _service_info(self) -> ServiceInfo:
        label = instance_label(self._name or "dsnode", self.did)
        txt = {"did": self.did, "spaces": ",".join(self._spaces), "port": str(self.port), "card": self._card}
        if self._name:
            txt["name"] = self._name
        if self._org:
            txt["org"] = self._org
        return ServiceInfo(self.service_type, f"{label}.{self.service_type}", port=self.port, properties=txt,
                           server=f"dsnode-{short_id(self.did)}.local.", parsed_addresses=list(self.interfaces),
                           host_ttl=self._ttl, other_ttl=self._ttl)

    @property
    def name(self) -> str | None:
        """The service name announced (zeroconf renames it if another answers to the same one)."""
        return self._info.name if self._info else None

    def start(self) -> Advertiser:
        if self._zc is not None:
            return self
        self._zc = _open_zeroconf(self.interfaces)
        try:
            self._info = self._service_info()
            # the instance name carries the did's hash, so no other node claims it: announcing at once
            # instead of probing for a conflict first saves about a second on every start
            self._zc.register_service(self._info, allow_name_change=True, cooperating_responders=True)
        except BaseException:
            self.close()
            raise
        return self

    def update(self, *, spaces: Iterable[str] | None = None, card_hash: str | None = None) -> None:
        """Announce new spaces or a new card hash."""
        if spaces is not None:
            self._spaces = _checked_spaces(spaces)
        if card_hash is not None:
            self._card = _checked_card(card_hash)
        if self._zc is not None and self._info is not None:
            info = self._service_info()
            info.name = self._info.name  # keep a name zeroconf had to change
            self._zc.update_service(info)
            self._info = info

    def close(self) -> None:
        zc, self._zc = self._zc, None
        if zc is not None:
            zc.close()  # unregisters (goodbye packets) and stops its thread

    def __enter__(self) -> Advertiser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked_spaces(spaces: Iterable[str]) -> tuple[str, ...]:
    spaces = tuple(spaces)
    if len(spaces) > MAX_SPACES or not all(isinstance(s, str) and SPACE_ID_RE.fullmatch(s) for s in spaces):
        raise ValueError(f"spaces must be at most {MAX_SPACES} space ids")
    return spaces


def _checked_card(card_hash: str) -> str:
    if card_hash and not _is_card_hash(card_hash):
        raise ValueError("card_hash must be 64 lowercase hex digits or empty")
    return card_hash


def _is_card_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


# --- browsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """One advertisement as received, well formed but not verified: anyone can send one."""

    service: str  # the mDNS service name, e.g. "车间一号 (1a2b3c4d)._dsnode._tcp.local."
    did: str
    addresses: tuple[str, ...]
    port: int
    spaces: tuple[str, ...]
    card: str  # sha256 of the node card, "" if it has none yet
    name: str  # the node's name as the TXT record gives it (the service label if none)
    org: str
    seen: float  # the browser's clock when it arrived


def parse_sighting(service: str, properties: dict, addresses: Iterable[str], srv_port: int, *, seen: float,
                   allow_loopback: bool = False) -> Sighting | str:
    """A :class:`Sighting` from a resolved service, or a short English reason (for the log) why the
    advertisement is junk. Never raises for what a peer sent."""
    if sum(len(k or b"") + len(v or b"") + 2 for k, v in properties.items()) > MAX_TXT:
        return "TXT record too long"
    txt: dict[str, str] = {}
    for key, value in properties.items():
        try:
            txt[key.decode("ascii").lower()] = (value or b"").decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            return "TXT entry not text"
    did = txt.get("did", "")
    try:
        public_key_from_did(did)
    except ApplianceError:
        return "no valid did"
    spaces = tuple(s for s in txt.get("spaces", "").split(",") if s)
    if len(spaces) > MAX_SPACES or not all(SPACE_ID_RE.fullmatch(s) for s in spaces):
        return "bad spaces"
    port_text = txt.get("port", str(srv_port))
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) == srv_port):
        return "port differs from the SRV record"
    if not 0 < srv_port < 65536:
        return "bad port"
    card = txt.get("card", "")
    if card and not _is_card_hash(card):
        return "bad card hash"
    usable = tuple(a for a in addresses if _usable(a, allow_loopback))
    if not usable:
        return "no usable address"
    label = service.split("._", 1)[0]
    return Sighting(service=service, did=did, addresses=usable, port=srv_port, spaces=spaces, card=card,
                    name=_display(txt.get("name", "")) or label, org=_display(txt.get("org", "")), seen=seen)


def _usable(address: str, allow_loopback: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_multicast or (ip.is_loopback and not allow_loopback))


def _display(text: str) -> str:
    return "".join(c for c in text if c.isprintable())[:MAX_TEXT]


class Browser:
    """Watches the interface addresses for advertisements: ``on_found(sighting)`` for a new or
    changed one, ``on_gone(service)`` when one says goodbye or stops answering. Callbacks run on
    the browser's threads; junk is logged (at most once a minute per service name) and dropped.

    A node that vanishes without a goodbye would stay for ~19 minutes if the browser waited for
    its pointer record to expire (zeroconf raises every PTR TTL to 1125 s). So every
    ``sweep_every`` seconds the browser resolves each service it knows again: from zeroconf's cache
    while the service's records live (the advertiser's ``ttl``), by asking the network once they
    have expired; a service that does not answer then is gone. A vanished node is dropped within
    about ``ttl + sweep_every + resolve_timeout`` plus zeroconf's 10-second cache sweep."""

    def __init__(self, interfaces: Iterable[str], on_found: Callable[[Sighting], None],
                 on_gone: Callable[[str], None] | None = None, *, service_type: str = SERVICE_TYPE,
                 clock: Callable[[], float] = time.monotonic, resolve_timeout: float = RESOLVE_TIMEOUT,
                 sweep_every: float = SWEEP_EVERY) -> None:
        self.interfaces = check_interfaces(interfaces)
        self.service_type = service_type
        self._on_found, self._on_gone = on_found, on_gone
        self._clock, self._timeout_ms = clock, int(resolve_timeout * 1000)
        self._allow_loopback = all(ipaddress.ip_address(a).is_loopback for a in self.interfaces)
        self._lock = threading.Lock()
        self._seen: dict[str, Sighting] = {}
        self._junk_logged: dict[str, float] = {}
        self._sweep_every = sweep_every
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._zc: Zeroconf | None = None
        self._browser: ServiceBrowser | None = None

    def start(self) -> Browser:
        if self._zc is not None:
            return self
        self._zc = _open_zeroconf(self.interfaces)
        try:
            self._browser = ServiceBrowser(self._zc, self.service_type, handlers=[self._changed])
            self._stop.clear()
            self._sweeper = threading.Thread(target=self._sweep, args=(self._zc,), name="dsnode-discovery-sweep",
                                             daemon=True)
            self._sweeper.start()
        except BaseException:
            self.close()
            raise
        return self

    def sightings(self) -> list[Sighting]:
        with self._lock:
            return list(self._seen.values())

    def close(self) -> None:
        self._stop.set()
        sweeper, self._sweeper = self._sweeper, None
        browser, self._browser = self._browser, None
        zc, self._zc = self._zc, None
        if sweeper is not None:
            sweeper.join()
        if browser is not None:
            browser.cancel()
        if zc is not None:
            zc.close()

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            self._forget(name)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=self._timeout_ms)
        if info is None or info.port is None:
            return  # not resolved in time; a later announcement or update tries again
        found = parse_sighting(name, info.properties, info.parsed_addresses(IPVersion.V4Only), info.port,
                               seen=self._clock(), allow_loopback=self._allow_loopback)
        if isinstance(found, str):
            self._junk(name, found)
            self._forget(name)  # an advertisement that turned into junk no longer stands
            return
        with self._lock:
            self._seen[name] = found
        self._on_found(found)

    def _sweep(self, zc: Zeroconf) -> None:
        while not self._stop.wait(self._sweep_every):
            for name in [s.service for s in self.sightings()]:
                if self._stop.is_set():
                    return
                if zc.get_service_info(self.service_type, name, timeout=self._timeout_ms) is None:
                    log.debug("%r stopped answering", name[:100])
                    self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            known = self._seen.pop(name, None)
        if known is not None and self._on_gone is not None:
            self._on_gone(name)

    def _junk(self, name: str, reason: str) -> None:
        now = self._clock()
        with self._lock:
            last = self._junk_logged.get(name)
            if last is not None and now - last < _JUNK_LOG_EVERY:
                return
            if len(self._junk_logged) > 256:
                self._junk_logged.clear()
            self._junk_logged[name] = now
        log.info("ignoring the advertisement of %r: %s", name[:100], reason)


# --- the peers seen --------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A node seen on the local network. Only ``did`` and ``verified`` mean anything before
    verification; the rest is what its advertisement claims."""

    did: str
    name: str
    org: str
    spaces: tuple[str, ...]
    address: str
    port: int
    card: str
    service: str  # the mDNS service name it advertised under
    verified: bool = False
    last_seen: float = 0.0


Verify = Callable[[Peer], bool]


class PeerDirectory:
    """Peers by did, fed by a :class:`Browser` (pass ``directory.found`` and ``directory.gone``).

    A new peer is verified on the directory's own thread by ``verify(peer) -> bool`` (it must not
    raise for a peer that fails; an :class:`ApplianceError` or ``OSError`` counts as a failure),
    trying each advertised address in turn. A verified peer is never displaced by an unverified
    advertisement naming the same did: a new address or service name for it is verified first.
    ``on_change(did)`` is called (on either thread) when a did's entry appears, changes or goes."""

    def __init__(self, verify: Verify | None = None, *, on_change: Callable[[str], None] | None = None) -> None:
        self._verify = verify
        self._on_change = on_change
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        self._latest: dict[str, Sighting] = {}  # service name -> its latest advertisement
        self._pending: dict[str, Sighting] = {}  # did -> the advertisement to verify next
        self._jobs: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._closed = False

    def peers(self) -> list[Peer]:
        with self._lock:
            return sorted(self._peers.values(), key=lambda p: (p.name, p.did))

    def get(self, did: str) -> Peer | None:
        with self._lock:
            return self._peers.get(did)

    def found(self, sighting: Sighting) -> None:
        changed: list[str] = []
        with self._lock:
            if self._closed:
                return
            before = self._latest.get(sighting.service)
            self._latest[sighting.service] = sighting
            if before is not None and before.did != sighting.did:
                changed += self._drop_service(before.did, sighting.service)
            current = self._peers.get(sighting.did)
            if current is not None and _same_place(current, sighting):
                self._peers[sighting.did] = _refreshed(current, sighting)
                if not current.verified and sighting.did in self._pending:
                    self._pending[sighting.did] = sighting
            elif current is None or not current.verified:
                self._peers[sighting.did] = _peer(sighting, sighting.addresses[0])
                changed.append(sighting.did)
                self._queue(sighting)
            else:
                self._queue(sighting)  # a verified peer moves only once the new place is verified
        self._notify(changed)

    def gone(self, service: str) -> None:
        with self._lock:
            sighting = self._latest.pop(service, None)
            changed = self._drop_service(sighting.did, service) if sighting else []
        self._notify(changed)

    def recheck(self, did: str) -> None:
        """Verify ``did`` again (say, after a failure while its node was still starting)."""
        with self._lock:
            current = self._peers.get(did)
            sighting = self._latest.get(current.service) if current else None
            if sighting is not None and sighting.did == did:
                self._queue(sighting)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join()

    def __enter__(self) -> PeerDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- under the lock

    def _drop_service(self, did: str, service: str) -> list[str]:
        """Forget ``did``'s entry if it came from ``service``; another service still claiming the
        did takes its place (unverified)."""
        current = self._peers.get(did)
        if current is None or current.service != service:
            return []
        del self._peers[did]
        for other in self._latest.values():
            if other.did == did:
                self._peers[did] = _peer(other, other.addresses[0])
                self._queue(other)
                break
        return [did]

    def _queue(self, sighting: Sighting) -> None:
        if self._verify is None or self._closed:
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="dsnode-peer-verify", daemon=True)
            self._worker.start()
        if sighting.did not in self._pending:
            self._jobs.put(sighting.did)
        self._pending[sighting.did] = sighting

    # -- the verifying thread

    def _work(self) -> None:
        while (did := self._jobs.get()) is not None:
            with self._lock:
                sighting = self._pending.pop(did, None)
                if self._closed:
                    return
                if sighting is None or self._latest.get(sighting.service) is None:
                    continue  # gone while waiting
            peer = self._verified(sighting)
            if peer is None:
                continue
            with self._lock:
                if self._closed:
                    return
                latest = self._latest.get(sighting.service)
                if latest is None or latest.did != did or peer.address not in latest.addresses:
                    continue  # gone or moved meanwhile (a move queued its own check)
                current = self._peers.get(did)
                if current is not None and current.verified and current.service != sighting.service \
                        and current.service in self._latest:
                    continue  # the peer already verified elsewhere still stands; keep it
                self._peers[did] = _refreshed(peer, latest)
            self._notify([did])

    def _verified(self, sighting: Sighting) -> Peer | None:
        assert self._verify is not None
        for address in sighting.addresses:
            candidate = _peer(sighting, address)
            try:
                ok = self._verify(candidate)
            except (ApplianceError, OSError) as exc:
                log.info("peer %s at %s:%d failed verification (%s)", sighting.did, address, sighting.port,
                         type(exc).__name__)
                ok = False
            except Exception:  # a bug in verify: say so, and keep the directory's thread alive
                log.exception("verifying peer %s failed unexpectedly", sighting.did)
                ok = False
            if ok is True:
                return replace(candidate, verified=True)
        return None

    def _notify(self, dids: list[str]) -> None:
        if self._on_change is not None:
            for did in dict.fromkeys(dids):
                self._on_change(did)


def _peer(sighting: Sighting, address: str) -> Peer:
    return Peer(did=sighting.did, name=sighting.name, org=sighting.org, spaces=sighting.spaces, address=address,
                port=sighting.port, card=sighting.card, service=sighting.service, last_seen=sighting.seen)


def _same_place(peer: Peer, sighting: Sighting) -> bool:
    return peer.service == sighting.service and peer.port == sighting.port and peer.address in sighting.addresses


def _refreshed(peer: Peer, sighting: Sighting) -> Peer:
    return replace(peer, name=sighting.name, org=sighting.org, spaces=sighting.spaces, card=sighting.card,
                   last_seen=sighting.seen)
