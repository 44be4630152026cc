"""Data delivery over the network: GB/s through the node-to-node channel (appliance.net.channel) with
AES-256-GCM and with ChaCha20-Poly1305, against plain TCP and TLS 1.3 (``ssl``, a self-signed
certificate made in the run) over loopback, with SHA-256 of the same bytes (what the manifest
costs) and each AEAD alone, all in one run.

The receiver runs in a child process, as the peer node would: the AEADs of ``cryptography`` hold
the GIL, so a receiver thread in this process would take turns with the sender instead of running
beside it. Each figure is the best of a few transfers of the same bytes in 1 MiB frames over one
connection (handshake excluded), the modes interleaved, timed at the sender from the first byte to the receiver's
acknowledgement of the last."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import multiprocessing
import os
import shutil
import socket
import ssl
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.x509.oid import NameOID

from appliance.crypto.keys import SigningKey
from appliance.net.channel import FRAME_DATA, SUITE, ChannelServer, connect
from bench.harness import Result, rnd

DESCRIPTION = "GB/s through the channel (AES-256-GCM, ChaCha20-Poly1305) vs plain TCP and TLS 1.3 on loopback; SHA-256"

MiB = 1024 * 1024
FRAME = MiB
MODES = ("plain_tcp", "channel_aes-256-gcm", "channel_chacha20-poly1305", "tls13")
TRANSFERS = 2  # per connection, per round
LAN_GBPS = 0.125  # 1 Gbit/s Ethernet: what a transfer between two edge boxes can use at most


# --- the receiving side (a child process) -----------------------------------------------------


def _receive_stream(sock, total: int, rounds: int, buf: bytearray) -> None:
    view = memoryview(buf)
    for _ in range(rounds):
        got = 0
        while got < total:
            n = sock.recv_into(view[:min(len(buf), total - got)])
            if not n:
                return
            got += n
        sock.sendall(b"k")


def _receiver(mode: str, pipe, total: int, rounds: int, cert: str | None) -> None:
    buf = bytearray(FRAME)
    if mode.startswith("channel_"):
        def handler(channel):
            for _ in range(rounds):
                got = 0
                while got < total:
                    got += len(channel.recv(timeout=120)[1])
                channel.send_json({"got": got})

        server = ChannelServer(SigningKey.generate(), handler, suite=mode.removeprefix("channel_"))
        server.start()
        pipe.send(server.port)
        pipe.recv()  # the sender is done
        server.stop()
        return
    listener = socket.create_server(("127.0.0.1", 0))
    pipe.send(listener.getsockname()[1])
    conn, _ = listener.accept()
    if mode == "tls13":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert, cert + ".key")
        conn = context.wrap_socket(conn, server_side=True)
    with conn:
        _receive_stream(conn, total, rounds, buf)
    listener.close()
    pipe.recv()


# --- the sending side -------------------------------------------------------------------------


def _self_signed(folder: Path) -> str:
    """A P-256 certificate for 127.0.0.1 and its key, PEM files in ``folder``; the certificate's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsnode bench")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(str(path) + ".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return str(path)


def _frames(data: memoryview, total: int):
    for start in range(0, total, FRAME):
        offset = start % len(data)
        yield data[offset:offset + FRAME]


def _send_rounds(mode: str, port: int, data: memoryview, total: int, rounds: int, cert: str) -> float:
    """Best seconds for ``total`` bytes over one connection, ``rounds`` times."""
    best = float("inf")
    if mode.startswith("channel_"):
        with connect("127.0.0.1", port, SigningKey.generate(), suite=mode.removeprefix("channel_")) as channel:
            for _ in range(rounds):
                t = time.perf_counter()
                for frame in _frames(data, total):
                    channel.send(FRAME_DATA, frame)
                assert channel.recv_json(timeout=120) == {"got": total}
                best = min(best, time.perf_counter() - t)
        return best
    sock = socket.create_connection(("127.0.0.1", port))
    if mode == "tls13":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_verify_locations(cert)
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
    with sock:
        for _ in range(rounds):
            t = time.perf_counter()
            for frame in _frames(data, total):
                sock.sendall(frame)
            assert sock.recv(1) == b"k"
            best = min(best, time.perf_counter() - t)
    return best


def _over_loopback(mode: str, data: memoryview, total: int, rounds: int, cert: str) -> float:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    child = context.Process(target=_receiver, args=(mode, theirs, total, rounds, cert), name=f"bench-{mode}")
    child.start()
    try:
        if not mine.poll(60):
            raise RuntimeError(f"the {mode} receiver did not start")
        seconds = _send_rounds(mode, mine.recv(), data, total, rounds, cert)
        mine.send("done")
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()
    return seconds


def _alone(fn, data: memoryview, total: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for frame in _frames(data, total):
            fn(frame)
        best = min(best, time.perf_counter() - t)
    return best


def run(quick: bool, say) -> Result:
    total = (256 if quick else 1024) * MiB
    rounds = 3 if quick else 6
    data = memoryview(os.urandom(64 * MiB))
    say(f"{total // MiB} MiB in 1 MiB frames over 127.0.0.1, receiver in a child process; "
        f"best of {rounds} rounds of {TRANSFERS} transfers per mode")
    work = Path(tempfile.mkdtemp(prefix="dsnode-bench-transfer-"))
    best: dict[str, float] = {}
    try:
        cert = _self_signed(work)
        for r in range(rounds):  # interleaved, so other work on the machine hits every mode alike
            say(f"  round {r + 1} of {rounds}…")
            for mode in MODES:
                seconds = _over_loopback(mode, data, total, TRANSFERS, cert)
                best[mode] = min(seconds, best.get(mode, seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    gbps = {mode: total / seconds / 1e9 for mode, seconds in best.items()}
    alone = {}
    for name, aead in (("aes-256-gcm", AESGCM), ("chacha20-poly1305", ChaCha20Poly1305)):
        cipher, out = aead(os.urandom(32)), bytearray(FRAME + 16)
        alone[f"seal_{name}"] = total / _alone(lambda f, c=cipher, o=out: c.encrypt_into(bytes(12), f, b"", o),
                                               data, total, rounds) / 1e9
    sha = hashlib.sha256()
    alone["sha256"] = total / _alone(sha.update, data, total, rounds) / 1e9
    chosen, plain = gbps[f"channel_{SUITE}"], gbps["plain_tcp"]
    for mode, value in {**gbps, **alone}.items():
        say(f"  {mode:<28} {value:6.2f} GB/s")
    say(f"  the channel ({SUITE}) runs at {chosen / plain:.2f}x plain TCP and {chosen / gbps['tls13']:.2f}x TLS 1.3")
    return Result(
        figures={"gb_per_s": {k: rnd(v, 3) for k, v in gbps.items()},
                 "one_core_gb_per_s": {k: rnd(v, 3) for k, v in alone.items()},
                 "size_mib": total // MiB, "frame_mib": FRAME // MiB, "suite": SUITE},
        baseline={"plain_tcp_gb_per_s": rnd(plain, 3), "tls13_gb_per_s": rnd(gbps["tls13"], 3)},
        ratio={"channel_to_plain_tcp": rnd(chosen / plain, 3),
               "chacha_channel_to_plain_tcp": rnd(gbps["channel_chacha20-poly1305"] / plain, 3),
               "channel_to_tls13": rnd(chosen / gbps["tls13"], 3)},
        target=f"the channel fills a 1 Gbit/s LAN (>= {LAN_GBPS} GB/s) and keeps up with TLS 1.3 (>= 0.8x)",
        met={"fills_lan": chosen >= LAN_GBPS, "keeps_up_with_tls13": chosen >= 0.8 * gbps["tls13"]},
    )
