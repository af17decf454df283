"""Access tokens (RS256 JWTs signed by the simulator) and client assertions."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    text = text.rstrip(b"=")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


class TokenError(Exception):
    """An OAuth error answer: status, error, AADSTS code, description."""

    def __init__(self, status, error, code, description):
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


class Identity:
    def __init__(self, signing_key):
        self.key = signing_key
        self.public_key = signing_key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = b64url(hashlib.sha1(der, usedforsecurity=False).digest())
        self._lock = threading.Lock()
        self._seen_jti = {}
        self._verified = {}

    def jwks(self):
        numbers = self.public_key.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": b64url(n),
                    "e": b64url(e),
                }
            ]
        }

    # ----- access tokens -------------------------------------------------------------

    def issue(self, app, lifetime, issuer_host, with_certificate):
        now = int(time.time())
        claims = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{app.tenant.id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "app_displayname": app.name,
            "appid": app.client_id,
            "appidacr": "2" if with_certificate else "1",
            "idp": f"https://sts.windows.net/{app.tenant.id}/",
            "idtyp": "app",
            "oid": app.object_id,
            "sub": app.object_id,
            "tid": app.tenant.id,
            "uti": b64url(uuid.uuid4().bytes),
            "ver": "1.0",
            "xms_sim_gen": app.generation,
            "xms_sim_host": issuer_host,
        }
        if app.roles:
            claims["roles"] = list(app.roles)
        header = {"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature), claims

    def sign(self, claims):
        """A JWT of these claims, RS256 with the simulator's key (id tokens, user tokens)."""
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def verify(self, token):
        """The claims of a token this simulator signed, or None. Expiry is the caller's."""
        with self._lock:
            claims = self._verified.get(token)
        if claims is not None:
            return claims
        try:
            head, body, sig = token.split(".")
            self.public_key.verify(
                b64url_decode(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = json.loads(b64url_decode(body))
        except (ValueError, InvalidSignature, TypeError):
            return None
        with self._lock:
            if len(self._verified) > 20000:
                self._verified.clear()
            self._verified[token] = claims
        return claims

    # ----- client credentials --------------------------------------------------------

    def check_secret(self, app, secret):
        if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            raise TokenError(
                401,
                "invalid_client",
                7000215,
                f"AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                f"sent in the request is the client secret value, not the client secret ID, "
                f"for a secret added to app '{app.client_id}'.",
            )

    def check_assertion(self, app, assertion, audiences, refuse_replay=True):
        """Checks a certificate-signed client assertion (RFC 7523) like Entra ID does."""
        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            header = json.loads(b64url_decode(head_b64))
            claims = json.loads(b64url_decode(body_b64))
            signature = b64url_decode(sig_b64)
        except (ValueError, TypeError) as err:
            raise TokenError(
                400, "invalid_request", 50027, "AADSTS50027: JWT token is invalid or malformed."
            ) from err
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise TokenError(
                401,
                "invalid_client",
                5002738,
                f"AADSTS5002738: Invalid JWT token. '{alg}' is not a supported signature "
                "algorithm.",
            )
        if app.cert is None:
            raise TokenError(
                401,
                "invalid_client",
                700027,
                "AADSTS700027: The certificate with identifier used to sign the client "
                "assertion is not registered on application. [Reason - The key was not "
                "found.]",
            )
        thumb_ok = False
        try:
            if "x5t#S256" in header:
                thumb_ok = hmac.compare_digest(b64url_decode(header["x5t#S256"]), app.sha256)
            elif "x5t" in header:
                thumb_ok = hmac.compare_digest(b64url_decode(header["x5t"]), app.sha1)
        except (ValueError, TypeError):
            thumb_ok = False
        if not thumb_ok:
            raise TokenError(
                401,
                "invalid_client",
                700027,
                f"AADSTS700027: The certificate with identifier used to sign the client "
                f"assertion is not registered on application. [Reason - The key was not "
                f"found., Thumbprint of key used by client: "
                f"'{header.get('x5t#S256') or header.get('x5t')}', Please visit the Azure "
                f"Portal, Graph Explorer or directly use MS Graph to see configured keys "
                f"for app Id '{app.client_id}'.]",
            )
        signed = f"{head_b64}.{body_b64}".encode()
        try:
            if alg == "RS256":
                app.cert.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                app.cert.public_key().verify(
                    signature,
                    signed,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                    hashes.SHA256(),
                )
        except InvalidSignature as err:
            raise TokenError(
                401,
                "invalid_client",
                700027,
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - "
                "The key used to sign the assertion does not match the certificate.]",
            ) from err
        if claims.get("aud") not in audiences:
            raise TokenError(
                401,
                "invalid_client",
                700212,
                f"AADSTS700212: No matching federated identity record found for presented "
                f"assertion audience '{claims.get('aud')}'.",
            )
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise TokenError(
                401,
                "invalid_client",
                700023,
                "AADSTS700023: Client assertion audience claim does not match Realm "
                "issuer. The 'iss' and 'sub' claims must be the client id.",
            )
        now = time.time()
        try:
            exp = float(claims["exp"])
            nbf = float(claims.get("nbf", claims.get("iat", now)))
        except (KeyError, TypeError, ValueError) as err:
            raise TokenError(
                401,
                "invalid_client",
                700024,
                "AADSTS700024: Client assertion is not within its valid time range.",
            ) from err
        if exp < now - 300 or nbf > now + 300 or exp - nbf > 86400 * 2:
            raise TokenError(
                401,
                "invalid_client",
                700024,
                f"AADSTS700024: Client assertion is not within its valid time range. "
                f"Current time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}, "
                f"assertion valid from {nbf}, expiry time of assertion {exp}.",
            )
        jti = claims.get("jti")
        if not jti:
            raise TokenError(
                401,
                "invalid_client",
                700021,
                "AADSTS700021: Client assertion application identifier doesn't match "
                "'client_id' parameter or the 'jti' claim is missing.",
            )
        if refuse_replay:
            with self._lock:
                for old in [k for k, v in self._seen_jti.items() if v < now - 600]:
                    del self._seen_jti[old]
                key = (app.client_id, jti)
                if key in self._seen_jti:
                    raise TokenError(
                        401,
                        "invalid_client",
                        700025,
                        "AADSTS700025: Client assertion has already been used (replayed "
                        "'jti' claim). Create a new assertion for each request.",
                    )
                self._seen_jti[key] = exp
        return claims
