#!/usr/bin/python3
"""CORS (docs/protocol.md section 12): GET /api/events and the server API
answer an Origin listed in http.allowed_origins with Access-Control-Allow-Origin
naming it (with credentials, never a wildcard) and answer its preflight; any
other origin gets no CORS headers and a refused preflight."""

import json

import harness
from harness import (ALLOWED_ORIGIN, SBTestCase, SSEStream, api_publish, http_request,
                     token, unique_uid)

OTHER_ORIGIN = "http://evil.example"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials")


class CorsTest(SBTestCase):
    server_overrides = (f'--http.allowed_origins=["{ALLOWED_ORIGIN}"]',)

    def events(self, origin):
        s = SSEStream(self.server.port, f"/api/events?token={token(unique_uid())}",
                      {"Origin": origin})
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200, s.head)
        return s

    def test_event_stream_names_an_allowed_origin(self):
        s = self.events(ALLOWED_ORIGIN)
        self.assertEqual(s.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)
        self.assertEqual(s.headers.get("access-control-allow-credentials"), "true")
        self.assertIn("Origin", s.headers.get("vary", ""))
        ev = s.next_event(5, pred=lambda e: "data" in e)
        self.assertEqual(json.loads(ev["data"])["type"], "connection_established")

    def test_event_stream_gives_other_origins_no_cors_headers(self):
        s = self.events(OTHER_ORIGIN)
        for h in CORS_HEADERS:
            self.assertNotIn(h, s.headers)

    def test_preflight(self):
        for path in ("/api/events", "/api/publish"):
            with self.subTest(path=path):
                r = http_request(self.server.port, "OPTIONS", path, key=None, headers={
                    "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization, last-event-id"})
                self.assertEqual(r.status, 204, r)
                self.assertEqual(r.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)
                self.assertIn("Authorization", r.headers.get("access-control-allow-headers"))
                self.assertIn("Last-Event-ID", r.headers.get("access-control-allow-headers"))
                self.assertIn("POST", r.headers.get("access-control-allow-methods"))
                r = http_request(self.server.port, "OPTIONS", path, key=None, headers={
                    "Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"})
                self.assertEqual(r.status, 403, r)
                self.assertNotIn("access-control-allow-origin", r.headers)

    def test_api_answers_carry_cors_headers_for_allowed_origins_only(self):
        channel = f"user:{unique_uid()}"
        body = {"channel": channel, "type": "notification", "data": {}}
        r = http_request(self.server.port, "POST", "/api/publish", body,
                         headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)
        r = http_request(self.server.port, "POST", "/api/publish", body, key="wrong",
                         headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(r.status, 401, "a browser can read the refusal")
        self.assertEqual(r.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)
        r = http_request(self.server.port, "POST", "/api/publish", body,
                         headers={"Origin": OTHER_ORIGIN})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertEqual(api_publish(self.server.port, channel, "notification", {}).status, 200)


if __name__ == "__main__":
    harness.main()
