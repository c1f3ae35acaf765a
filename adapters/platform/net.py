"""Local TCP ports: pick a free one, tell whether one is taken."""

from __future__ import annotations

import socket
import threading

# Ports this process has handed out: a port picked for a child that has not bound it yet is
# still free to the kernel, which may give it out again (the supervisor once gave the api's
# and the projector's metrics the same port, and the api could not start).
_handed_out: set[tuple[str, int]] = set()
_lock = threading.Lock()
TRIES = 100


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now and that this process has not
    handed out before."""
    with _lock:
        for _ in range(TRIES):
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if (host, port) not in _handed_out:
                _handed_out.add((host, port))
                return port
    raise OSError(f"no free port on {host} in {TRIES} tries that was not handed out already")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts connections on `host:port`."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0
