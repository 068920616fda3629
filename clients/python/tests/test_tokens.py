"""switchboard.tokens without a node: the claims minted, and decode()
refusing what the node refuses (test_client and test_django open sockets
with minted and SimpleJWT tokens)."""

import datetime
import unittest

import support  # noqa: F401  (puts the package on the path)

from switchboard import tokens

SECRET = "tokens-test-secret-0123456789abcdef0123"


class TokensTest(unittest.TestCase):

    def test_claims_are_simplejwt_access_claims(self):
        tok = tokens.mint(42, secret=SECRET, name="Alice", role="cadet", channels=("chat:1",),
                          lifetime=datetime.timedelta(minutes=10), now=1000)
        c = tokens.decode(tok, secret=SECRET, now=1001)
        self.assertEqual({k: c[k] for k in ("token_type", "exp", "iat", "user_id", "name",
                                            "role", "channels")},
                         {"token_type": "access", "exp": 1600, "iat": 1000, "user_id": 42,
                          "name": "Alice", "role": "cadet", "channels": ["chat:1"]})
        self.assertRegex(c["jti"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(c["jti"], tokens.decode(tokens.mint(42, secret=SECRET), secret=SECRET)
                            ["jti"])
        self.assertEqual(tokens.decode(tokens.mint("u-7", secret=SECRET), secret=SECRET)
                         ["user_id"], "u-7")

    def test_decode_refuses_what_the_node_refuses(self):
        tok = tokens.mint(42, secret=SECRET, lifetime=60, now=1000)
        for bad, why in ((tok, "expired"), (tok[:-2] + "AA", "signature"), ("a.b", "JWT")):
            with self.assertRaises(tokens.InvalidToken, msg=why):
                tokens.decode(bad, secret=SECRET)
        with self.assertRaises(tokens.InvalidToken):
            tokens.decode(tokens.mint(42, secret=SECRET, claims={"token_type": "refresh"}),
                          secret=SECRET)
        with self.assertRaises(tokens.InvalidToken):
            tokens.decode(tokens.mint(42, secret=SECRET), secret=SECRET + "x")

    def test_bad_arguments(self):
        for uid in ("", None, True, 4.2):
            with self.assertRaises(ValueError):
                tokens.mint(uid, secret=SECRET)
        with self.assertRaises(ValueError):
            tokens.mint(42, secret="")


if __name__ == "__main__":
    unittest.main()
