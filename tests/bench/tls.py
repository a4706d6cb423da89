"""The gateway role's CA (roles/gateway/files/gateway_pki.py, imported, not copied) and a
server certificate it signs for 127.0.0.1, and a TLS-terminating proxy on loopback:
https in front of the (http only) test llama-server, as the TLS gateway would be."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from llmbox.lab.testhosts import REPO_ROOT

PKI_MODULE = REPO_ROOT / "roles" / "gateway" / "files" / "gateway_pki.py"


def _gateway_pki() -> ModuleType:
    """The role's controller-side script, loaded as a module (it is no package)."""
    spec = importlib.util.spec_from_file_location("gateway_pki", PKI_MODULE)
    assert spec is not None and spec.loader is not None, PKI_MODULE
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Ca:
    directory: Path  # the role's CA directory: ca.crt, ca.key, hosts/

    @property
    def pem(self) -> Path:
        return self.directory / "ca.crt"


def make_ca(directory: Path, name: str) -> Ca:
    """A CA made by the gateway role's own code, in ``directory/<name>/``."""
    ca = Ca(directory / name)
    _gateway_pki().ensure_ca(ca.directory, False)
    return ca


def server_context(ca: Ca) -> ssl.SSLContext:
    """A server TLS context whose certificate ``ca`` signed for IP 127.0.0.1, issued the
    way the role issues a gateway's certificate (kept beside the CA, in hosts/)."""
    issued = _gateway_pki().issue(ca.directory, "loopback", ["127.0.0.1"], False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(issued["certificate"]), str(issued["key"]))
    return context


class TlsProxy:
    """https://127.0.0.1:<port> forwarding each connection's bytes to ``upstream``."""

    def __init__(self, context: ssl.SSLContext, upstream: tuple[str, int]) -> None:
        self._context = context
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.handshake_errors: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(exc))
            client.close()
            return
        upstream = socket.create_connection(self._upstream)
        threading.Thread(target=_pump, args=(upstream, secure), daemon=True).start()
        _pump(secure, upstream)

    def close(self) -> None:
        self._listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
