"""`dsnode space join|leave`: join a data space with an invitation, or leave one."""

from __future__ import annotations

import sys

from appliance import i18n
from appliance.domain.membership import JoinPending, JoinRejected, SpaceJoined
from appliance.host.flows import join_and_wait
from appliance.settings import Settings
from edge.cmd_node import open_node
from edge import forward

t = i18n.t


def join(args, settings: Settings) -> int:
    with open_node(settings) as node:
        invitation = node.membership.read_invitation(args.invitation)
        print(t("join.invitation", invitation.space_name, invitation.space_id))
        print(t("join.operator", invitation.operator_did))
        print(t("join.broker", f"{invitation.broker_host}:{invitation.broker_port}",
                t("join.tls") if invitation.tls_ca_pem else t("join.no_tls")))
        if not args.yes:
            if not sys.stdin.isatty():
                print(t("join.need_yes"), file=sys.stderr)
                return 2
            if input(t("join.confirm")).strip().lower() not in ("y", "yes", "是", "好"):
                print(t("join.cancelled"))
                return 0
        outcome = join_and_wait(node, args.invitation, wait=args.wait, on_sent=lambda: print(t("join.sent")))
    for event in outcome.events:
        if isinstance(event, JoinPending):
            print(t("join.pending"))
        elif isinstance(event, SpaceJoined):
            print(t("join.admitted", invitation.space_id, outcome.grade if outcome.grade is not None else "-"))
        elif isinstance(event, JoinRejected):
            print(t("join.rejected", event.reason))
            return 1
    if args.wait > 0 and not outcome.decided:
        print(t("join.later"))
    return 0


def leave(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.membership.leave(args.space)
    print(t("join.left", args.space))
    return 0


def space_group(sub):
    """The `dsnode space` subcommands, shared with other command modules that add to the group."""
    existing = sub.choices.get("space")
    if existing is not None:
        for action in existing._actions:  # noqa: SLF001 - argparse keeps its subparsers action here
            if hasattr(action, "add_parser"):
                return action
    return sub.add_parser("space", help=t("cli.space")).add_subparsers(dest="action", metavar="ACTION",
                                                                      required=True)


def register(sub) -> None:
    space = space_group(sub)
    p = space.add_parser("join", help=t("cli.space.join"))
    p.add_argument("invitation", metavar="CODE|FILE", type=forward.PathText, help=t("cli.opt.invitation"))
    p.add_argument("--yes", action="store_true", help=t("cli.opt.yes"))
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help=t("cli.opt.wait"))
    p.set_defaults(run=join)
    p = space.add_parser("leave", help=t("cli.space.leave"))
    p.add_argument("space", metavar="SPACE")
    p.set_defaults(run=leave)
