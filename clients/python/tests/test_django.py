"""The Django side against the real node, from the example project's real
settings module (examples/django/campus/settings.py): the channel layer's
group_send reaching real WebSocket clients on /ws/notifications/ and
/ws/chat/{room}/, the operations that need consumers refused, the helpers,
the example's view, signal and websocket_monitor command, and a token made
by Django SimpleJWT accepted by the node."""

import asyncio
import io
import os
import tempfile
import unittest

import support
from support import harness

from switchboard import tokens

NODE = None


def setUpModule():
    """One node; Django configured once, from the example's settings, with
    the node's address and secrets in the environment as in production."""
    global NODE
    NODE = support.start_node(name="django")
    db = tempfile.NamedTemporaryFile(prefix="sb-example-", suffix=".sqlite3", delete=False)
    db.close()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "campus.settings",
        "EXAMPLE_DB": db.name,
        "SWITCHBOARD_URL": support.base_url(NODE),
        "SWITCHBOARD_API_KEY": support.API_KEY,
        "SWITCHBOARD_JWT_SECRET": support.JWT_SECRET,
        "SWITCHBOARD_ADMIN_URL": support.admin_url(NODE),
        "SWITCHBOARD_ADMIN_TOKEN": support.ADMIN_TOKEN,
    })
    import django
    from django.core.management import call_command
    django.setup()
    call_command("migrate", verbosity=0)


def tearDownModule():
    NODE.stop()
    NODE.cleanup()
    os.unlink(os.environ["EXAMPLE_DB"])


async def connect(path, user_id, **claims):
    c = await harness.open_ws(NODE, path, tokens.mint(user_id, secret=support.JWT_SECRET,
                                                      **claims))
    first = await c.recv(timeout=5)
    assert first.get("type") == "connection_established", first
    return c


def group_send(group, message):
    """What the site's code does, from sync code (a view, a signal, a task)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    return async_to_sync(get_channel_layer().group_send)(group, message)


class ChannelLayerTest(support.AsyncTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.clients = []

    async def asyncTearDown(self):
        for c in self.clients:
            await c.close()

    async def ws(self, path, user_id, **claims):
        c = await connect(path, user_id, **claims)
        self.clients.append(c)
        return c

    async def test_group_send_reaches_notifications(self):
        user = harness.unique_uid()
        c = await self.ws("/ws/notifications/", user)
        await asyncio.to_thread(group_send, f"user_{user}",
                                {"type": "notification", "title": "Assignment graded",
                                 "url": "/grades/7"})
        got = await c.recv("notification")
        self.assertEqual((got["channel"], got["event_id"]), (f"user:{user}", 1))
        self.assertEqual(got["data"], {"title": "Assignment graded", "url": "/grades/7"})

    async def test_group_send_reaches_a_chat_room_and_maps_types(self):
        room = harness.unique_room("lobby")
        c = await self.ws(f"/ws/chat/{room}/", harness.unique_uid(), channels=[f"chat:{room}"])
        await asyncio.to_thread(group_send, f"chat_{room}",
                                {"type": "send_notification", "text": "class starts"})
        got = await c.recv("notification")
        self.assertEqual((got["channel"], got["data"]), (f"chat:{room}", {"text": "class starts"}))

    async def test_group_send_from_async_code(self):
        from channels.layers import get_channel_layer
        user = harness.unique_uid()
        c = await self.ws("/ws/notifications/", user)
        published = await get_channel_layer().group_send(f"user_{user}",
                                                          {"type": "ping_me", "n": 1})
        self.assertEqual(published.event_id, 1)
        self.assertEqual((await c.recv("ping_me"))["data"], {"n": 1})

    async def test_configured_group_pattern(self):
        from switchboard import Client
        course = harness.unique_room("c")
        await asyncio.to_thread(group_send, f"course_{course}", {"type": "lesson", "n": 3})
        with Client(support.base_url(NODE), support.API_KEY) as sb:
            events = sb.history(f"course:{course}").events
        self.assertEqual([(e["type"], e["data"]) for e in events], [("lesson", {"n": 3})])

    async def test_what_needs_a_consumer_is_refused(self):
        from channels.layers import get_channel_layer
        from switchboard.channels import NoConsumers, UnmappedGroup
        layer = get_channel_layer()
        for call in (layer.group_add("user_1", "specific.abc"),
                     layer.group_discard("user_1", "specific.abc"),
                     layer.receive("specific.abc"), layer.new_channel(),
                     layer.send("worker", {"type": "x"})):
            with self.assertRaises(NoConsumers) as e:
                await call
            self.assertIn("Switchboard", str(e.exception))
            self.assertIsInstance(e.exception, NotImplementedError)
        with self.assertRaises(UnmappedGroup) as e:
            await layer.group_send("staff_room", {"type": "x"})
        self.assertIn("CONFIG['groups']", str(e.exception))
        with self.assertRaises(TypeError):
            await layer.group_send("bad group!", {"type": "x"})


class DjangoHelpersTest(support.AsyncTestCase):

    async def test_helpers_publish_to_their_channels(self):
        from switchboard.django import (broadcast_to_role, get_client, notify_dashboard,
                                        notify_user, update_leaderboard)
        user = harness.unique_uid()
        role = harness.unique_room("role")
        note = await connect("/ws/notifications/", user)
        updates = await connect("/ws/updates/", harness.unique_uid(), role=role)
        board = await connect("/ws/leaderboard/", harness.unique_uid())
        dash = await connect("/ws/dashboard/", harness.unique_uid(), role="mentor")
        await asyncio.to_thread(notify_user, user, "notification", {"title": "hi"})
        await asyncio.to_thread(broadcast_to_role, role, "announcement", {"text": "all"})
        await asyncio.to_thread(update_leaderboard, {"top": [{"user_id": user, "points": 3}]})
        await asyncio.to_thread(notify_dashboard, "attendance_update", {"present": 12})
        self.assertEqual((await note.recv("notification"))["data"], {"title": "hi"})
        self.assertEqual((await updates.recv("announcement"))["channel"], f"role:{role}")
        self.assertEqual((await board.recv("leaderboard_update"))["data"]["top"][0]["points"], 3)
        self.assertEqual((await dash.recv("attendance_update"))["data"], {"present": 12})
        for c in (note, updates, board, dash):
            await c.close()
        self.assertIs(get_client(), get_client(), "one client per process")


class ExampleProjectTest(support.AsyncTestCase):

    async def test_view_notifies_the_user(self):
        from django.test import Client as DjangoClient
        user = harness.unique_uid()
        c = await connect("/ws/notifications/", user)
        resp = await asyncio.to_thread(
            DjangoClient().post, f"/notify/{user}/", data={"title": "Graded", "url": "/g/1"},
            content_type="application/json")
        self.assertEqual(resp.status_code, 200, resp.content)
        self.assertEqual(resp.json(), {"channel": f"user:{user}", "event_id": 1})
        self.assertEqual((await c.recv("notification"))["data"], {"title": "Graded", "url": "/g/1"})
        await c.close()

    async def test_signal_notifies_the_student(self):
        from notifications.models import Grade
        user = harness.unique_uid()
        c = await connect("/ws/notifications/", user)
        grade = await asyncio.to_thread(Grade.objects.create, student_id=user, course="Math",
                                        grade="A")
        got = await c.recv("grade_update")
        self.assertEqual(got["data"], {"grade_id": grade.pk, "course": "Math", "grade": "A",
                                       "created": True})
        await c.close()

    async def test_websocket_monitor_command(self):
        from django.core.management import call_command
        user = harness.unique_uid()
        c = await connect("/ws/notifications/", user)
        out = io.StringIO()
        await asyncio.to_thread(call_command, "websocket_monitor", stdout=out)
        text = out.getvalue()
        self.assertIn("py-node-1 *", text)
        self.assertIn(f"{user}  ", text)
        self.assertIn("/ws/notifications/", text)
        out = io.StringIO()
        await asyncio.to_thread(call_command, "websocket_monitor", "--json", stdout=out)
        self.assertIn('"user_id"', out.getvalue())
        await c.close()


class SimpleJWTTest(support.AsyncTestCase):
    """An access token issued by Django SimpleJWT, signed with the node's
    secret, opens a socket as is."""

    async def test_simplejwt_access_token_is_accepted(self):
        try:
            from rest_framework_simplejwt.backends import TokenBackend
            from rest_framework_simplejwt.tokens import AccessToken
        except ImportError:
            self.skipTest("python3-djangorestframework-simplejwt is not installed")
        user = harness.unique_uid()

        class User:
            pk = id = user

        # As the site's SimpleJWT issues it with SIMPLE_JWT["SIGNING_KEY"] the node's secret.
        payload = AccessToken.for_user(User()).payload
        tok = TokenBackend("HS256", support.JWT_SECRET).encode(payload)
        self.assertEqual(tokens.decode(tok, secret=support.JWT_SECRET)["user_id"], user)
        c = await harness.open_ws(NODE, "/ws/notifications/", tok)
        first = await c.recv(timeout=5)
        self.assertEqual((first["type"], first["user_id"]), ("connection_established", user))
        await c.close()


if __name__ == "__main__":
    unittest.main()
