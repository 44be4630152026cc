"""Who may log in to the embedded broker and what each account may do.

The accounts and rules come in mosquitto's dynamic-security document format (clients with
PBKDF2-SHA512 password hashes, roles with prioritised ACLs, default access), the same data the
operator generates for mosquitto (:func:`appliance.operator.broker_config.embedded_broker_document`),
and they are checked the way the dynamic-security plugin checks them: a client's roles in order of
priority, each role's ACLs of the asked kind in order of priority, the first ACL whose topic
matches decides; when none does, the default access for that kind applies.

The operator changes accounts at run time with the plugin's own commands on
``$CONTROL/dynamic-security/v1`` (``createRole``, ``deleteRole``, ``createClient``,
``deleteClient``, ``getClient``, ``listClients``); :meth:`Access.control` answers them.
Everything is held in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from appliance.net.broker.topics import covers, matches

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ITERATIONS = 101
KINDS = {"publishClientSend": "publishClientSend", "publishClientReceive": "publishClientReceive",
         "subscribeLiteral": "subscribe", "subscribePattern": "subscribe",
         "unsubscribeLiteral": "unsubscribe", "unsubscribePattern": "unsubscribe"}
DEFAULTS = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True}

SEND, RECEIVE, SUBSCRIBE = "publishClientSend", "publishClientReceive", "subscribe"
DECISIONS_HELD = 50_000  # remembered access decisions (about 10 MB at most); then they are made afresh


class AccessError(ValueError):
    """The access document is not in the expected form (text says where)."""


@dataclass(frozen=True)
class Acl:
    acltype: str
    topic: str
    priority: int
    allow: bool


@dataclass
class Client:
    username: str
    digest: bytes
    salt: bytes
    iterations: int
    roles: list[tuple[str, int]] = field(default_factory=list)  # (rolename, priority)


def _hash(password: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password, salt, iterations, 64)


def _acl(entry: dict) -> Acl:
    acltype = entry.get("acltype")
    if acltype not in KINDS or not isinstance(entry.get("topic"), str):
        raise AccessError(f"bad ACL {entry!r}")
    return Acl(acltype, entry["topic"], int(entry.get("priority", 0)), bool(entry.get("allow", False)))


def _roles(entries) -> list[tuple[str, int]]:
    return [(str(r["rolename"]), int(r.get("priority", 0))) for r in entries or []]


class Access:
    """Accounts and rules in memory. Not thread-safe: the broker's event loop owns it."""

    open = False

    def __init__(self, document: dict) -> None:
        try:
            self.default = dict(DEFAULTS)
            self.default.update({k: bool(v) for k, v in (document.get("defaultACLAccess") or {}).items()
                                 if k in DEFAULTS})
            self.roles: dict[str, list[Acl]] = {str(r["rolename"]): [_acl(a) for a in r.get("acls", [])]
                                                for r in document.get("roles", [])}
            self.clients: dict[str, Client] = {}
            for c in document.get("clients", []):
                self.clients[str(c["username"])] = Client(
                    str(c["username"]), base64.b64decode(c["password"]), base64.b64decode(c["salt"]),
                    int(c.get("iterations", ITERATIONS)), _roles(c.get("roles")))
            self._ordered: dict[tuple[str | None, str], list[Acl]] = {}  # rules in the order they are tried
            self._decided: dict[tuple[str | None, str, str], bool] = {}
            self.version = 0  # changes whenever the accounts or rules may have
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise AccessError(f"the access document is not a dynamic-security document ({type(e).__name__}: {e})") \
                from None

    # --- checks -----------------------------------------------------------------------------------

    def authenticate(self, username: str | None, password: bytes | None) -> bool:
        client = self.clients.get(username or "")
        if client is None or password is None:
            return False
        return hmac.compare_digest(_hash(password, client.salt, client.iterations), client.digest)

    def allowed(self, username: str | None, kind: str, topic: str) -> bool:
        """May ``username`` do ``kind`` (SEND, RECEIVE or SUBSCRIBE) on ``topic`` (a filter for SUBSCRIBE)?

        Decisions are remembered (a message to a space is checked for every subscriber, and the
        same topics come again and again) until the rules change or too many are held."""
        key = (username, kind, topic)
        decision = self._decided.get(key)
        if decision is None:
            if len(self._decided) >= DECISIONS_HELD:
                self._decided.clear()
            decision = self._decided[key] = self._decide(username, kind, topic)
        return decision

    def _decide(self, username: str | None, kind: str, topic: str) -> bool:
        acls = self._ordered.get((username, kind))
        if acls is None:
            client = self.clients.get(username or "")
            if client is None:
                return False  # deleted meanwhile: nothing more
            acls = self._ordered[(username, kind)] = [
                acl for rolename, _ in sorted(client.roles, key=lambda r: -r[1])
                for acl in sorted(self.roles.get(rolename, ()), key=lambda a: -a.priority)
                if KINDS[acl.acltype] == kind]
        for acl in acls:
            if acl.acltype.endswith("Literal"):
                hit = acl.topic == topic
            elif kind in ("subscribe", "unsubscribe"):
                hit = covers(acl.topic, topic)
            else:
                hit = matches(acl.topic, topic)
            if hit:
                return acl.allow
        return self.default[kind]

    # --- run-time changes ($CONTROL/dynamic-security/v1) -------------------------------------------

    def control(self, payload: bytes) -> tuple[dict, set[str]]:
        """Carry out one command batch; returns the response document and the usernames removed
        (their connections are to be closed)."""
        try:
            commands = json.loads(payload)["commands"]
            if not isinstance(commands, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return {"responses": [{"command": "Unknown command", "error": "Invalid/missing commands"}]}, set()
        responses: list[dict] = []
        removed: set[str] = set()
        self.version += 1
        self._ordered.clear()
        self._decided.clear()
        for command in commands:
            if not isinstance(command, dict):
                responses.append({"command": "Unknown command", "error": "Invalid command"})
                continue
            name = str(command.get("command", ""))
            answer: dict = {"command": name}
            if "correlationData" in command:
                answer["correlationData"] = command["correlationData"]
            try:
                data = self._command(name, command, removed)
                if data is not None:
                    answer["data"] = data
            except _Refused as e:
                answer["error"] = str(e)
            except (KeyError, TypeError, ValueError) as e:
                answer["error"] = f"Invalid/missing {e}"
            responses.append(answer)
        return {"responses": responses}, removed

    def _command(self, name: str, cmd: dict, removed: set[str]):
        if name == "createRole":
            role = str(cmd["rolename"])
            if role in self.roles:
                raise _Refused("Role already exists")
            self.roles[role] = [_acl(a) for a in cmd.get("acls", [])]
        elif name == "deleteRole":
            role = str(cmd["rolename"])
            if self.roles.pop(role, None) is None:
                raise _Refused("Role not found")
            for holder in self.clients.values():
                holder.roles = [r for r in holder.roles if r[0] != role]
        elif name == "createClient":
            username = str(cmd["username"])
            if username in self.clients:
                raise _Refused("Client already exists")
            roles = _roles(cmd.get("roles"))
            if any(r not in self.roles for r, _ in roles):
                raise _Refused("Role not found")
            salt = secrets.token_bytes(12)
            password = str(cmd.get("password", "")).encode("utf-8")
            self.clients[username] = Client(username, _hash(password, salt, ITERATIONS), salt, ITERATIONS, roles)
        elif name == "deleteClient":
            username = str(cmd["username"])
            if self.clients.pop(username, None) is None:
                raise _Refused("Client not found")
            removed.add(username)
        elif name == "getClient":
            client = self.clients.get(str(cmd["username"]))
            if client is None:
                raise _Refused("Client not found")
            return {"client": {"username": client.username,
                               "roles": [{"rolename": r, "priority": p} for r, p in client.roles]}}
        elif name == "listClients":
            return {"totalCount": len(self.clients), "clients": sorted(self.clients)}
        else:
            raise _Refused("Unknown command")
        return None


class OpenAccess:
    """No accounts: anyone may connect and do anything (tests and local experiments only)."""

    open = True
    version = 0

    def authenticate(self, username, password) -> bool:
        return True

    def allowed(self, username, kind, topic) -> bool:
        return True

    def control(self, payload: bytes) -> tuple[dict, set[str]]:
        return {"responses": [{"command": "Unknown command", "error": "No dynamic security here"}]}, set()


class _Refused(Exception):
    pass
