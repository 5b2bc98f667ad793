"""Bearer JWTs to principals with PyJWT: the identity port (``tokenplans.IdentityProvider``).

``JwtIdentity`` verifies a token against one configured key family — an HMAC secret
(HS256 by default), or a public key / JWKS URL for RS*/PS*/ES*/EdDSA — and never both,
so a token cannot pick its own verification method (algorithm confusion). ``mint_token``
makes the HS256 tokens the CLI and development mode hand out.
"""

from __future__ import annotations

from tokenplans_adapters.jwt_identity.identity import (
    MAX_TOKEN_BYTES,
    JwtConfigError,
    JwtIdentity,
    mint_token,
)
from tokenplans_adapters.jwt_identity.jwks import JwksKeys

__all__ = ["MAX_TOKEN_BYTES", "JwksKeys", "JwtConfigError", "JwtIdentity", "mint_token"]
