"""One error tree for everything a user can be told.

Each class's docstring is its English message template (``{}`` placeholders, filled in order from
the constructor arguments); the Chinese text lives in ``assets/i18n/zh_CN.json`` under
``error.<ClassName>``. Every class has its own exit code so scripts on edge boxes can tell them
apart. A bug is never caught as one of these: they are for things the user can act on.
"""

from __future__ import annotations

import inspect

from appliance import i18n


class ApplianceError(Exception):
    """Something went wrong: {}"""

    exit_code = 1

    def template(self, lang: str | None = None) -> str:
        lang = lang or i18n.get_lang()
        text = i18n.lookup(f"error.{type(self).__name__}", lang) if lang != "en" else None
        return text or inspect.cleandoc(type(self).__doc__ or "{}")

    def message(self, lang: str | None = None) -> str:
        lang = lang or i18n.get_lang()
        template = self.template(lang)
        args = [_localized(a, lang) for a in self.args]
        try:
            return template.format(*args)
        except (IndexError, KeyError):
            return template + " " + " ".join(map(str, args))

    def __str__(self) -> str:
        return self.message("en")


# --- configuration and input -----------------------------------------------------------------


class ConfigError(ApplianceError):
    """The configuration is not valid: {}. Fix the setting and try again."""

    exit_code = 10


class KeySourceError(ApplianceError):
    """Cannot read the store key: {}. Check the key file, environment variable or systemd credential."""

    exit_code = 11


class PassphraseMismatch(ApplianceError):
    """The two passphrases you typed are different. Type the same passphrase twice."""

    exit_code = 12


class PassphraseTooShort(ApplianceError):
    """The passphrase is too short: use at least {} characters."""

    exit_code = 13


class NoPassphrase(ApplianceError):
    """No passphrase was given and there is no terminal to ask for one. Use --key-file, --key-env or a systemd credential."""  # noqa: E501

    exit_code = 14


# --- the encrypted store ---------------------------------------------------------------------


class StoreError(ApplianceError):
    """The local store has a problem: {}"""

    exit_code = 20


class StoreNotFound(StoreError):
    """No node store at {}. Run `dsnode init` first, or point --home at the right folder."""

    exit_code = 21


class StoreExists(StoreError):
    """A node store already exists at {}. Choose another folder, or use the existing node."""

    exit_code = 22


class WrongPassphrase(StoreError):
    """The passphrase is wrong, or the store key does not match this store. Nothing was changed; try again."""

    exit_code = 23


class StoreFromFuture(StoreError):
    """This store was written by a newer dsnode (schema {}, this version understands up to {}). Install the newer version to open it."""  # noqa: E501

    exit_code = 24


class StoreCorrupt(StoreError):
    """The store at {} is damaged: {}. Restore it from a backup with `dsnode restore`."""

    exit_code = 25


class StoreBusy(StoreError):
    """The store is busy in another program (the desktop app or the daemon). Close it or wait, then try again."""

    exit_code = 26


class BackupInvalid(StoreError):
    """The backup file {} cannot be used: {}. Nothing was restored; use another copy of the backup."""

    exit_code = 27


def store_reason(key: str, *args: object) -> LocalText:
    """What went wrong with the store, in the user's language (``store.reason.<key>``)."""
    return LocalText(f"store.reason.{key}", *args)


class StoreIOError(StoreError):
    """The store at {} could not be read or written: {}. Check free disk space and the disk, then try again."""

    exit_code = 28


# --- crypto and messages ---------------------------------------------------------------------


class CryptoError(ApplianceError):
    """A signature or key check failed: {}"""

    exit_code = 30


class BadSignature(CryptoError):
    """The signature on {} is not valid. The data was changed or was not signed by who it claims."""

    exit_code = 31


class MalformedDid(CryptoError):
    """{} is not a valid did:key identifier of an Ed25519 key."""

    exit_code = 32


class CredentialInvalid(CryptoError):
    """The credential cannot be accepted: {}"""

    exit_code = 33


class MalformedMessage(CryptoError):
    """A message could not be read: {}"""

    exit_code = 34


# --- identity --------------------------------------------------------------------------------


class IdentityError(ApplianceError):
    """The node identity has a problem: {}"""

    exit_code = 40


# --- evidence --------------------------------------------------------------------------------


class EvidenceError(ApplianceError):
    """The evidence log has a problem: {}"""

    exit_code = 50


class EvidenceWriteFailed(EvidenceError):
    """The evidence record could not be written ({}), so the action was not carried out. Check free disk space and try again."""  # noqa: E501

    exit_code = 51


class EvidenceTampered(EvidenceError):
    """The evidence log does not verify: {}. It was changed after it was written; keep the store for investigation and restore from a backup."""  # noqa: E501

    exit_code = 52


class BundleInvalid(EvidenceError):
    """The evidence bundle {} does not verify: {}"""

    exit_code = 53


# --- space operator and membership (engineer D; codes 100–119) -------------------------------


class OperatorError(ApplianceError):
    """The space operator role has a problem: {}"""

    exit_code = 100


class NotAnOperator(OperatorError):
    """The store at {} does not run a data space. Create one with `dsnode operator init`."""

    exit_code = 101


class OperatorExists(OperatorError):
    """The store at {} already runs data space {}. Use it, or choose another --home."""

    exit_code = 102


class InvitationInvalid(OperatorError):
    """The invitation cannot be used: {}. Ask the space operator for a new invitation."""

    exit_code = 103


class InvitationExpired(OperatorError):
    """The invitation expired on {}. Ask the space operator for a new one."""

    exit_code = 104


class UnknownMember(OperatorError):
    """No member, request or filing {} in this space. List them with `dsnode operator members` (or admissions, listings)."""  # noqa: E501

    exit_code = 105


class BrokerConfigError(OperatorError):
    """The broker configuration cannot be written: {}"""

    exit_code = 106


class BrokerAdminFailed(OperatorError):
    """The broker did not accept the account change: {}. Check that the broker is running with the configuration from `dsnode operator broker-config`."""  # noqa: E501

    exit_code = 107


class MembershipError(ApplianceError):
    """Space membership has a problem: {}"""

    exit_code = 110


class AlreadyInSpace(MembershipError):
    """This node is already in space {} (status: {}). Leave it first with `dsnode space leave {}`."""

    exit_code = 111


class NotInSpace(MembershipError):
    """This node is not a member of space {}. Join it with an invitation from its operator."""

    exit_code = 112


class MemberRevoked(MembershipError):
    """The operator of space {} revoked this node's membership. Contact the operator."""

    exit_code = 113


# --- contracts (exit codes 120–139) ---------------------------------------------------------


class ContractError(ApplianceError):
    """The contract cannot go ahead: {}"""

    exit_code = 120


class IllegalTransition(ContractError):
    """A {} message is not allowed while the negotiation is {}. Nothing was changed."""

    exit_code = 121


class NegotiationNotFound(ContractError):
    """This node has no contract negotiation {}. List them with `dsnode contract list`."""

    exit_code = 122


class NotYourMove(ContractError):
    """Negotiation {} is {}: this node cannot {} it now."""

    exit_code = 123


class DatasetNotInCatalog(ContractError):
    """Dataset {} is not in the catalog of space {} here. Search it with `dsnode space catalog {}`, or sync first."""

    exit_code = 124


class OfferNotFound(ContractError):
    """Dataset {} has no offer {}. `dsnode space catalog {}` lists its offers."""

    exit_code = 125


class OfferChoiceNeeded(ContractError):
    """Dataset {} has {} offers ({}): choose one with --offer ID. `dsnode space catalog {}` shows each offer's terms."""

    exit_code = 126



# --- space sync (engineer C; codes 80–99) ----------------------------------------------------


class SyncError(ApplianceError):
    """Space sync has a problem: {}"""

    exit_code = 80


class SpaceNotFound(SyncError):
    """This node has no space {}. List its spaces with `dsnode space list`."""

    exit_code = 81


class SpaceExists(SyncError):
    """This node already has space {}. Use it, or leave it first."""

    exit_code = 82


class InvalidSpaceId(SyncError):
    """{} is not a valid space id: use 3 to 64 lowercase letters, digits and hyphens."""

    exit_code = 83


class TopicNotAllowed(SyncError):
    """This node may not publish to {} in space {} (its status there is {})."""

    exit_code = 84


class MessageTooLarge(SyncError):
    """The message is {} bytes, more than the limit of {} bytes. Send less at once."""

    exit_code = 85


class BrokerUnreachable(SyncError):
    """Could not sync space {} with its broker at {}: {}. Queued messages stay queued; check the network and try again."""  # noqa: E501

    exit_code = 86


# --- catalog: data resources (60-69) -----------------------------------------------------------


class ResourceError(ApplianceError):
    """The data resource has a problem: {}"""

    exit_code = 60


class ResourceNotFound(ResourceError):
    """There is no data resource {}. See the registered ones with `dsnode resource list`."""

    exit_code = 61


class AmbiguousResourceId(ResourceError):
    """{} matches more than one data resource ({}). Type more characters of the id."""

    exit_code = 62


class PathNotAllowed(ResourceError):
    """{} is outside the folders dsnode may read ({}). Move the data into one of them, or ask the administrator to allow its folder."""  # noqa: E501

    exit_code = 63


class SourceUnreadable(ResourceError):
    """Cannot read {}: {}. Check that it exists and that dsnode may read it; nothing was registered."""

    exit_code = 64


class MalformedTable(ResourceError):
    """{} cannot be read as a table: {}. Fix the file (or register it as a plain file with --kind file); nothing was registered."""  # noqa: E501

    exit_code = 65


class UnsupportedSource(ResourceError):
    """{} cannot be registered this way: {}"""

    exit_code = 66


class InvalidMaskingRule(ResourceError):
    """The masking rule is not valid: {}. Nothing was changed."""

    exit_code = 67


class InvalidLabel(ResourceError):
    """The label is not valid: {}. Use category general, important or core and a level from 1 to 4."""

    exit_code = 68


class VaultError(ResourceError):
    """The encrypted vault could not store or read {}: {}. Check free disk space, then try again."""

    exit_code = 69


# --- catalog: products, offers, listing (codes 71–79; 70 is the CLI's internal error) --------


class LocalText:
    """A piece of an error message looked up in the user's language when the message is shown."""

    def __init__(self, key: str, *args: object) -> None:
        self.key, self.args = key, args

    def message(self, lang: str | None = None) -> str:
        lang = lang or i18n.get_lang()
        return i18n.t(self.key, *[_localized(a, lang) for a in self.args], lang=lang)

    def __str__(self) -> str:
        return self.message("en")


def _localized(arg: object, lang: str) -> object:
    """Message parts that know both languages (LocalText, ODRL problems) speak ``lang``."""
    if isinstance(arg, (list, tuple)):
        return ("; " if lang == "en" else "；").join(str(_localized(a, lang)) for a in arg)
    return arg.message(lang) if hasattr(arg, "message") else arg


class ProductError(ApplianceError):
    """The data product has a problem: {}"""

    exit_code = 71


class ProductNotFound(ProductError):
    """There is no data product {} on this node. `dsnode product list` shows the products."""

    exit_code = 72


class PolicyInvalid(ProductError):
    """The offer is not valid: {}. Correct it and try again."""

    exit_code = 73

    def __init__(self, problems) -> None:
        self.problems = list(problems)
        super().__init__(self.problems)


class OfferTemplateError(ProductError):
    """Offer template {}: {}. `dsnode product templates` lists the templates and their parameters."""

    exit_code = 74


class ResourceNotUsable(ProductError):
    """Resource {} cannot go into a product: {}."""

    exit_code = 75


class ListingStateInvalid(ProductError):
    """Product {} is "{}" in space {}, so it cannot be {} now."""

    exit_code = 76


class ProductNotReady(ProductError):
    """Product {} cannot be listed yet: {}."""

    exit_code = 77


class ProductNotListed(ProductError):
    """Product {} is not listed or waiting to be listed {}, so there is nothing to delist."""

    exit_code = 78



# --- the running node and its control API (codes 140–149) -----------------------------------


class HostError(ApplianceError):
    """The running node has a problem: {}"""

    exit_code = 140


class NodeRunning(HostError):
    """A running node (process {}) holds the store in {}, and `dsnode {}` needs the store to itself. Stop the running node first (Ctrl+C in its window, `systemctl stop dsnode`, or quit the desktop app), then try again."""  # noqa: E501

    exit_code = 141


class ControlUnavailable(HostError):
    """The running node in {} did not answer ({}). If it has stopped, run the command again; if it hangs, stop it and start it again."""  # noqa: E501

    exit_code = 142


class ControlRefused(HostError):
    """The running node refused the request: {}."""

    exit_code = 143


def shown(value: object, limit: int = 80) -> str:
    """A received value named in a message: text quoted and cut at ``limit`` characters, a number
    as written (unless it is too long to print), anything else by its JSON type. ``repr`` would
    print a peer's 70,000-character string into a log, and raises for an integer of 4,300 digits."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "…"
        return repr(text.encode("utf-8", "backslashreplace").decode("utf-8"))
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value) if value.bit_length() < 64 else "a number too large"
    if isinstance(value, float):
        return repr(value)
    names: dict[type, str] = {dict: "an object", list: "a list", tuple: "a list"}
    return names.get(type(value), type(value).__name__)


# --- data delivery (issue 12; codes 150–159) ------------------------------------------------


class DeliveryError(ApplianceError):
    """The delivery cannot go ahead: {}"""

    exit_code = 150


class IllegalTransferMove(DeliveryError):
    """A {} message is not allowed while the transfer is {}. Nothing was changed."""

    exit_code = 151


class ManifestInvalid(DeliveryError):
    """The manifest of transfer {} cannot be accepted: {}. Nothing of it is kept as received data; ask the provider to deliver again."""  # noqa: E501

    exit_code = 152


class ReceiptInvalid(DeliveryError):
    """The receipt for transfer {} cannot be accepted: {}. The delivery stays unconfirmed until the consumer sends a valid receipt."""  # noqa: E501

    exit_code = 153


class ChunkCorrupt(DeliveryError):
    """Chunk {} of transfer {} does not match the manifest: {}. The data was changed or damaged on the way; if it happens again, check the network and start the transfer again."""  # noqa: E501

    exit_code = 154


class ChannelRefused(DeliveryError):
    """The data connection with {} could not be opened: {}. Check that it is the right node, that it is running and that it accepts this node, then try again."""  # noqa: E501

    exit_code = 155


class ChannelTimeout(DeliveryError):
    """{} did not answer on the data connection within {} seconds. Check the network, then try again."""

    exit_code = 156


class ChannelClosed(DeliveryError):
    """The data connection with {} was closed: {}."""

    exit_code = 157


class ChannelTampered(ChannelClosed):
    """A frame from {} failed its integrity check ({}), so the data connection was closed. The data was changed on the way or the sender is faulty; try the transfer again."""  # noqa: E501

    exit_code = 158


class FrameTooLarge(ChannelClosed):
    """{} announced a frame of {} bytes, more than the limit of {} bytes, so the data connection was closed."""

    exit_code = 159



class TransferNotFound(DeliveryError):
    """There is no transfer {} on this node. `dsnode transfer list` shows the transfers."""

    exit_code = 160

# --- finding nodes on the local network (issue 12; codes 145–149) ----------------------------


class DiscoveryError(HostError):
    """Finding nodes on the local network failed: {}"""

    exit_code = 145


class DiscoveryAddressInvalid(DiscoveryError):
    """{} cannot be used to find nodes on the local network: {}. Name addresses that this computer has on its network interfaces."""  # noqa: E501

    exit_code = 146


class DiscoveryUnavailable(DiscoveryError):
    """Finding nodes on the local network could not start on {}: {}."""

    exit_code = 147
