"""Mosquitto configuration for a data space: listener, TLS, accounts and access control.

Two ways to hold the accounts, both generated here:

* **dynamic security** (the default): mosquitto's ``mosquitto_dynamic_security`` plugin keeps
  clients and roles in a JSON file the broker owns. The operator adds a member's account when it
  admits the node and deletes it on revocation, at run time, over ``$CONTROL/dynamic-security/v1``
  (:mod:`appliance.operator.dynsec`), without restarting the broker.
* **password file + ACL file**: ``mosquitto_passwd``-compatible ``$7$`` PBKDF2-SHA512 hashes and
  ``pattern`` rules with ``%u``. Mosquitto's password file cannot hold a username with ``:``, so a
  member's username is its did:key without the ``did:key:`` prefix and topics spell it
  ``did:key:%u``. The operator rewrites both files on admission and revocation and asks the broker
  to reload them (SIGHUP through the pid file).

The rules are the same either way. Relative to ``tds/v1/{space}/``, a member whose did is D may
publish only to ``node/D/#``, ``catalog/D/#``, ``evidence/D`` and any ``inbox/+``, and may receive
everything in the space except other nodes' inboxes and the join topics. The operator account
publishes ``operator/#`` (and to inboxes, and its own ``node/`` subtree). A one-time join account
``join-<token id>`` may publish only to ``operator/join/<token id>`` and read only
``operator/join/<token id>/reply``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import BrokerConfigError, LocalText
from appliance.net.broker.limits import BrokerLimits

try:
    import pwd
except ImportError:  # Windows: no users to hand the folder to
    pwd = None  # type: ignore[assignment]

DEFAULT_ITERATIONS = 101  # mosquitto_passwd's default for $7$ hashes
SALT_SIZE = 12
HASH_SIZE = 64
ADMIN_USERNAME = "dsnode-admin"
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
MODES = ("dynsec", "password-file")
BROKER_USER = "mosquitto"  # Debian's mosquitto, started as root, drops to this user


def space_root(space_id: str) -> str:
    return f"tds/v1/{space_id}"


def join_topic(space_id: str, token_id: str) -> str:
    """Where a joining node publishes its join request (absolute topic)."""
    return f"{space_root(space_id)}/operator/join/{token_id}"


def join_reply_topic(space_id: str, token_id: str) -> str:
    return f"{join_topic(space_id, token_id)}/reply"


def password_username(did: str) -> str:
    """A member's username in password-file mode (mosquitto's file format forbids ':')."""
    return did.removeprefix("did:key:")


# --- password hashes -------------------------------------------------------------------------


def pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_SIZE)


def password_hash(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A ``mosquitto_passwd`` ``$7$`` line value: ``$7$<iterations>$<b64 salt>$<b64 hash>``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_SIZE)
    digest = pbkdf2(password, salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def new_password() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(24)).rstrip(b"=").decode()


# --- access rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One access rule: ``kind`` is ``send`` (publish), ``receive``, ``subscribe``; ``allow`` or deny."""

    kind: str
    topic: str
    allow: bool = True
    priority: int = 0


def member_rules(space_id: str, did: str) -> list[Rule]:
    root = space_root(space_id)
    return [
        Rule("send", f"{root}/node/{did}/#"),
        Rule("send", f"{root}/catalog/{did}/#"),
        Rule("send", f"{root}/evidence/{did}"),
        Rule("send", f"{root}/inbox/+"),
        Rule("receive", f"{root}/inbox/{did}", priority=3),
        Rule("receive", f"{root}/inbox/#", allow=False, priority=2),
        Rule("receive", f"{root}/operator/join/#", allow=False, priority=2),
        Rule("receive", f"{root}/#"),
        Rule("subscribe", f"{root}/#"),
    ]


def operator_rules(space_id: str, did: str) -> list[Rule]:
    root = space_root(space_id)
    return [
        Rule("send", f"{root}/operator/#"),
        Rule("send", f"{root}/node/{did}/#"),
        Rule("send", f"{root}/inbox/+"),
        Rule("receive", f"{root}/inbox/{did}", priority=3),
        Rule("receive", f"{root}/inbox/#", allow=False, priority=2),
        Rule("receive", f"{root}/operator/join/+/reply", allow=False, priority=2),
        Rule("receive", f"{root}/#"),
        Rule("subscribe", f"{root}/#"),
    ]


def join_rules(space_id: str, token_id: str) -> list[Rule]:
    reply = join_reply_topic(space_id, token_id)
    return [Rule("send", join_topic(space_id, token_id)), Rule("receive", reply), Rule("subscribe", reply)]


ADMIN_RULES = [
    Rule("send", "$CONTROL/dynamic-security/#"),
    Rule("receive", "$CONTROL/dynamic-security/#"),
    Rule("subscribe", "$CONTROL/dynamic-security/#"),
]


# --- dynamic security ------------------------------------------------------------------------

_DYNSEC_TYPES = {"send": "publishClientSend", "receive": "publishClientReceive", "subscribe": "subscribePattern"}


def dynsec_acls(rules: list[Rule]) -> list[dict]:
    acls = [{"acltype": _DYNSEC_TYPES[r.kind], "topic": r.topic, "priority": r.priority, "allow": r.allow}
            for r in rules]
    acls += [{"acltype": "unsubscribePattern", "topic": r.topic, "priority": 0, "allow": True}
             for r in rules if r.kind == "subscribe"]
    return acls


def dynsec_client(username: str, password: str, rolename: str, *, salt: bytes | None = None,
                  iterations: int = DEFAULT_ITERATIONS, textname: str = "") -> dict:
    """A client entry of the dynamic-security JSON file (the password stored as PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_SIZE)
    return {
        "username": username, "textname": textname,
        "password": base64.b64encode(pbkdf2(password, salt, iterations)).decode(),
        "salt": base64.b64encode(salt).decode(), "iterations": iterations,
        "roles": [{"rolename": rolename, "priority": 0}],
    }


def dynsec_document(space_id: str, *, operator_did: str, operator_password: str, admin_password: str) -> dict:
    """The initial dynamic-security file: the operator's account and the admin account, nothing else."""
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                             "subscribe": False, "unsubscribe": True},
        "clients": [
            dynsec_client(ADMIN_USERNAME, admin_password, "dsnode-admin", textname="dsnode operator admin"),
            dynsec_client(operator_did, operator_password, operator_rolename(space_id), textname="space operator"),
        ],
        "groups": [],
        "roles": [
            {"rolename": "dsnode-admin", "acls": dynsec_acls(ADMIN_RULES)},
            {"rolename": operator_rolename(space_id), "acls": dynsec_acls(operator_rules(space_id, operator_did))},
        ],
    }


def operator_rolename(space_id: str) -> str:
    return f"operator-{space_id}"


def member_rolename(did: str) -> str:
    return f"member-{did}"


def join_rolename(token_id: str) -> str:
    return f"join-{token_id}"


# --- password file and ACL file --------------------------------------------------------------


@dataclass
class Accounts:
    """Who may log in, for the password-file mode: plain passwords are never written, only hashes."""

    space_id: str
    operator_did: str
    operator_hash: str
    members: dict[str, str] = field(default_factory=dict)  # did -> $7$ hash
    joins: dict[str, str] = field(default_factory=dict)  # token id -> $7$ hash


def password_file_text(accounts: Accounts) -> str:
    lines = [f"{password_username(accounts.operator_did)}:{accounts.operator_hash}"]
    lines += [f"{password_username(did)}:{h}" for did, h in sorted(accounts.members.items())]
    lines += [f"join-{token}:{h}" for token, h in sorted(accounts.joins.items())]
    return "\n".join(lines) + "\n"


def acl_file_text(accounts: Accounts) -> str:
    """Mosquitto ACL file: ``pattern`` rules with ``%u`` for members, ``user`` blocks for the rest.

    Mosquitto checks ``deny`` lines before the others, and ``user`` lines before ``pattern``
    lines, so each account gets only ``read``/``write`` grants of the exact subtrees it may use.
    """
    root = space_root(accounts.space_id)
    me = "did:key:%u"
    lines = ["# dsnode: generated by `dsnode operator broker-config`; rewritten on admission and revocation", ""]
    lines += [f"user {password_username(accounts.operator_did)}"]
    lines += [f"topic write {root}/operator/#", f"topic write {root}/node/{accounts.operator_did}/#",
              f"topic write {root}/inbox/+", f"topic read {root}/inbox/{accounts.operator_did}"]
    lines += [f"topic read {root}/{sub}" for sub in ("node/#", "catalog/#", "evidence/#", "operator/space",
                                                      "operator/revocations", "operator/templates/#",
                                                      "operator/witness/#", "operator/join/+")]
    for token in sorted(accounts.joins):
        lines += ["", f"user join-{token}", f"topic write {join_topic(accounts.space_id, token)}",
                  f"topic read {join_reply_topic(accounts.space_id, token)}"]
    lines += ["", "# every member, by its username (its did:key without the did:key: prefix)"]
    lines += [f"pattern write {root}/node/{me}/#", f"pattern write {root}/catalog/{me}/#",
              f"pattern write {root}/evidence/{me}", f"pattern read {root}/inbox/{me}"]
    members_only = "# members also write any inbox and read the shared state"
    lines += [members_only]
    for did in sorted(accounts.members):
        user = password_username(did)
        lines += [f"user {user}", f"topic write {root}/inbox/+"]
        lines += [f"topic read {root}/{sub}" for sub in ("node/#", "catalog/#", "evidence/#", "operator/space",
                                                          "operator/revocations", "operator/templates/#",
                                                          "operator/witness/#")]
    return "\n".join(lines) + "\n"


# --- mosquitto.conf --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 8883
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # with a CA, clients must present certificates it signed
    require_client_cert: bool = False


def find_dynsec_plugin() -> str | None:
    for path in DYNSEC_PLUGIN_PATHS:
        if os.path.exists(path):
            return path
    return None


def mosquitto_conf(out_dir: Path, listener: ListenerConfig, *, mode: str = "dynsec",
                   plugin_path: str | None = None, limits: BrokerLimits | None = None,
                   included: bool = False) -> str:
    """The text of mosquitto.conf for one space, with every file under ``out_dir``. ``included``: a
    snippet for the system's mosquitto (``include_dir``), whose main file sets persistence itself."""
    if mode not in MODES:
        raise BrokerConfigError(LocalText("operator.reason.bad_mode", ", ".join(MODES)))
    out = Path(out_dir).resolve()
    lines = [
        "# dsnode data space broker: generated by `dsnode operator broker-config`",
        "per_listener_settings false",
        "allow_anonymous false",
        "set_tcp_nodelay true",  # small QoS 1 messages go out at once (no Nagle wait on delayed ACKs)
        f"listener {int(listener.port)} {listener.host}",
        "protocol mqtt",
    ]
    if (listener.tls_cert is None) != (listener.tls_key is None):
        raise BrokerConfigError(LocalText("operator.reason.tls_pair"))
    if listener.tls_cert is not None and listener.tls_key is not None:
        lines += [f"certfile {Path(listener.tls_cert).resolve()}", f"keyfile {Path(listener.tls_key).resolve()}",
                  "tls_version tlsv1.2"]
        if listener.tls_ca is not None:
            lines += [f"cafile {Path(listener.tls_ca).resolve()}"]
            if listener.require_client_cert:
                lines += ["require_certificate true"]
    elif listener.host not in ("127.0.0.1", "localhost", "::1"):
        raise BrokerConfigError(LocalText("operator.reason.needs_tls", listener.host))
    if mode == "dynsec":
        plugin = plugin_path or find_dynsec_plugin()
        if plugin is None:
            raise BrokerConfigError(LocalText("operator.reason.no_dynsec_plugin"))
        lines += [f"plugin {plugin}", f"plugin_opt_config_file {out / 'dynamic-security.json'}"]
    else:
        lines += [f"password_file {out / 'passwd'}", f"acl_file {out / 'acl'}", f"pid_file {out / 'mosquitto.pid'}"]
    if not included:  # mosquitto refuses a second persistence_location
        lines += ["persistence true", f"persistence_location {out}/"]
    lines += [
        *(limits or BrokerLimits()).mosquitto_lines(),
        "retain_available true",
    ]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds password hashes). As root, the file belongs
    to whoever owns its folder (the broker's user, see :func:`hand_to_broker`), so the broker can
    read it again when it reloads its accounts."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        folder = path.parent.stat()
        os.chown(tmp, folder.st_uid, folder.st_gid)
    os.replace(tmp, path)


def write_readable(path: Path, text: str) -> None:
    """Write a file everyone may read (mode 0644), whole or not at all: a configuration snippet that
    names the broker's files but holds no secret, read by mosquitto before it drops root."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # whatever the umask
    os.replace(tmp, path)


def hand_to_broker(folder: Path) -> str | None:
    """Make the broker's folder owner-only (0700, files 0600) and, when run as root on a system
    with a ``mosquitto`` user, owned by that user: mosquitto started as root (as Debian's service
    is) drops to it before it reads the dynamic-security file and writes its persistence, so a
    root-owned folder would stop it. Returns the user the folder now belongs to, if it changed."""
    folder = Path(folder)
    os.chmod(folder, 0o700)
    files = [p for p in folder.iterdir() if p.is_file()]
    for path in files:
        os.chmod(path, 0o600)
    if pwd is None or os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None
    for path in [folder, *files]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return BROKER_USER


def write_dynsec_file(path: Path, document: dict) -> None:
    write_private(path, json.dumps(document, indent=2) + "\n")


# --- the embedded broker (no mosquitto) -------------------------------------------------------

EMBEDDED_PLUGIN = "(none: the embedded broker reads dynamic-security.json itself)"


def embedded_broker_document(space_id: str, *, operator_did: str, operator_password: str,
                             admin_password: str) -> dict:
    """The accounts and rules the embedded broker (:mod:`appliance.net.broker`) starts from.

    It is the dynamic-security document mosquitto would start from, so both brokers enforce one
    rule set: the operator and admin accounts at first, and every member's and join account's
    role added at run time by :class:`appliance.operator.dynsec.DynsecAdmin` over
    ``$CONTROL/dynamic-security/v1``, which the embedded broker answers like the plugin.
    """
    return dynsec_document(space_id, operator_did=operator_did, operator_password=operator_password,
                           admin_password=admin_password)


def read_dynsec_file(path: Path) -> dict:
    """A dynamic-security file written by :func:`write_dynsec_file` (for the embedded broker)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BrokerConfigError(LocalText("operator.reason.cannot_read", path, str(e))) from None
    if not isinstance(document, dict):
        raise BrokerConfigError(LocalText("operator.reason.not_dynsec", path))
    return document
