"""Where the web app can be reached: the addresses to print for a bound host, and a
port check made before anything is printed."""

from __future__ import annotations

import errno
import ipaddress
import socket

from anchoral.errors import ValidationError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DOCUMENTATION_ADDRESS = "192.0.2.1"  # TEST-NET-1: a UDP "connect" to it only picks the outgoing interface, sends nothing


def reachable_hosts(host: str) -> list[str]:
    """The host names and addresses teammates can use for a server bound to ``host``.

    A wildcard bind (0.0.0.0, ::) is reachable at every address of this machine: its
    name, the address of the interface that routes outwards, and the others its name
    resolves to (loopback last, as it only works on this machine)."""
    if host not in WILDCARD_HOSTS:
        return [host]
    found: list[str] = []
    name = socket.gethostname()
    outward = _outward_address()
    candidates = [outward] if outward else []
    try:
        candidates += [info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)]
    except OSError:
        pass
    for address in candidates:
        if address not in found and not ipaddress.ip_address(address).is_loopback:
            found.append(address)
    if name and name not in ("localhost",):
        found.append(name)
    return [*found, "127.0.0.1"]


def _outward_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((DOCUMENTATION_ADDRESS, 9))
            return probe.getsockname()[0]
    except OSError:
        return None


def check_port_free(host: str, port: int) -> None:
    """ValidationError naming the port when ``host:port`` cannot be bound (in use, not allowed)."""
    if not 0 < port < 65536:
        raise ValidationError(f"--port must be between 1 and 65535; got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValidationError(f"port {port} on {host} is already in use; choose another with --port") from None
            raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
