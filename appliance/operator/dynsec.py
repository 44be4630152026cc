"""Run-time account changes on mosquitto's dynamic security plugin, over ``$CONTROL/dynamic-security/v1``.

The operator calls this when it admits a node (create its role and account), issues an invitation
(a one-time join account), or revokes a member (delete the account: the plugin disconnects it).
Each call opens a short MQTT 5 connection as the admin account, sends one batch of commands, waits
for the plugin's answer and disconnects; nothing runs in the background afterwards.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from appliance.errors import BrokerAdminFailed, LocalText
from appliance.operator import broker_config as bc

log = logging.getLogger(__name__)

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
IGNORABLE = ("Client not found", "Role not found", "Client already exists", "Role already exists")


@dataclass(frozen=True)
class AdminEndpoint:
    host: str
    port: int
    username: str
    password: str
    tls_ca_pem: str | None = None
    timeout: float = 10.0


class DynsecAdmin:
    """Sends command batches to the dynamic security plugin and checks every answer."""

    def __init__(self, endpoint: AdminEndpoint) -> None:
        self._endpoint = endpoint

    # --- what the operator does ---------------------------------------------------------------

    def add_member(self, space_id: str, did: str, password: str) -> None:
        role = bc.member_rolename(did)
        self.run([
            {"command": "createRole", "rolename": role, "acls": bc.dynsec_acls(bc.member_rules(space_id, did))},
            {"command": "createClient", "username": did, "password": password, "textname": "space member",
             "roles": [{"rolename": role, "priority": 0}]},
        ], ignore=("Client already exists", "Role already exists"))

    def remove_member(self, did: str) -> None:
        self.run([{"command": "deleteClient", "username": did},
                  {"command": "deleteRole", "rolename": bc.member_rolename(did)}], ignore=IGNORABLE)

    def add_join_account(self, space_id: str, token_id: str, password: str) -> None:
        role = bc.join_rolename(token_id)
        self.run([
            {"command": "createRole", "rolename": role, "acls": bc.dynsec_acls(bc.join_rules(space_id, token_id))},
            {"command": "createClient", "username": f"join-{token_id}", "password": password,
             "textname": "one-time join account", "roles": [{"rolename": role, "priority": 0}]},
        ], ignore=("Client already exists", "Role already exists"))

    def remove_join_account(self, token_id: str) -> None:
        self.run([{"command": "deleteClient", "username": f"join-{token_id}"},
                  {"command": "deleteRole", "rolename": bc.join_rolename(token_id)}], ignore=IGNORABLE)

    # --- the wire -----------------------------------------------------------------------------

    def run(self, commands: list[dict], *, ignore: tuple[str, ...] = ()) -> list[dict]:
        """Send ``commands`` in one batch; raise BrokerAdminFailed unless each succeeds (or fails in ``ignore``)."""
        tag = secrets.token_hex(8)
        for i, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{i}"
        responses = self._exchange({"commands": commands}, tag, len(commands))
        for response in responses:
            error = response.get("error")
            if error and not any(text in error for text in ignore):
                raise BrokerAdminFailed(LocalText("operator.reason.command_refused", response.get("command"), error))
        return responses

    def _exchange(self, payload: dict, tag: str, expected: int) -> list[dict]:
        ep = self._endpoint
        answers: list[dict] = []
        done = threading.Event()
        subscribed = threading.Event()
        connected: list = []

        def on_connect(client, userdata, flags, reason, properties):
            connected.append(reason)
            if reason.is_failure:
                done.set()
                return
            client.subscribe(RESPONSE, qos=1)

        def on_subscribe(client, userdata, mid, reasons, properties):
            subscribed.set()

        def on_message(client, userdata, msg):
            try:
                data = json.loads(msg.payload)
            except ValueError:
                return
            for response in data.get("responses", []):
                if str(response.get("correlationData", "")).startswith(tag + "-"):
                    answers.append(response)
            if len(answers) >= expected:
                done.set()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dsnode-admin-{tag}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(ep.username, ep.password)
        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        if ep.tls_ca_pem:
            client.tls_set_context(_tls_context(ep.tls_ca_pem))
        try:
            client.connect(ep.host, ep.port, keepalive=30)
        except OSError as e:
            raise BrokerAdminFailed(
                LocalText("operator.reason.broker_unreachable", f"{ep.host}:{ep.port}", str(e))) from None
        client.loop_start()
        try:
            if not subscribed.wait(ep.timeout):
                reason = str(connected[0]) if connected else LocalText("operator.reason.no_answer")
                raise BrokerAdminFailed(LocalText("operator.reason.admin_no_connect", reason))
            client.publish(CONTROL, json.dumps(payload), qos=1)
            if not done.wait(ep.timeout):
                raise BrokerAdminFailed(LocalText("operator.reason.dynsec_silent"))
        finally:
            client.disconnect()
            client.loop_stop()
        return answers


def _tls_context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.load_verify_locations(cadata=ca_pem)
    return context
