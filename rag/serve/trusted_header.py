"""Sign-in through an SSO proxy: the proxy authenticates people and passes their user name in a header; the
server believes that header only from the proxies it was told to trust (`serve.trusted_user_header`,
`serve.trusted_proxies`; off by default), and maps the user to the API key of the same name, whose groups
and admin flag apply (`rag keys create --name alice --groups hr`). Anyone else sending the header is ignored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import Request

from rag.config import ServeConfig
from rag.index.contracts import ApiKey, KeyStore


@dataclass(frozen=True, slots=True)
class TrustedHeader:
    header: str
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_config(cls, serve: ServeConfig) -> "TrustedHeader | None":
        """None unless `serve.trusted_user_header` is set."""
        if not serve.trusted_user_header:
            return None
        return cls(serve.trusted_user_header, tuple(ipaddress.ip_network(p, strict=False) for p in serve.trusted_proxies))

    def user(self, request: Request) -> str | None:
        """The user name the header carries, when the request comes from a trusted proxy; else None."""
        value = request.headers.get(self.header, "").strip()
        if not value or request.client is None:
            return None
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return None
        return value if any(address in network for network in self.proxies) else None

    @staticmethod
    def key_of(keys: KeyStore, user: str) -> ApiKey | None:
        """The live key named like the user: its groups and admin flag are the user's."""
        return next((key for key in keys.list() if key.name == user), None)
