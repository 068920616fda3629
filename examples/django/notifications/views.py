"""A view that notifies one user, with the package's helper."""

import json

from django.http import JsonResponse
from django.views.decorators.http import require_POST

from switchboard import SwitchboardError
from switchboard.django import notify_user


@require_POST
def notify(request, user_id):
    """POST /notify/<user_id>/ {"title", "url"}: a `notification` on the
    user's channel; answers with its event_id once it is durable."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    try:
        published = notify_user(user_id, "notification",
                                {"title": str(body.get("title", "")), "url": str(body.get("url", ""))})
    except SwitchboardError as e:
        return JsonResponse({"error": f"notification not sent: {e}"}, status=503)
    return JsonResponse({"channel": published.channel, "event_id": published.event_id})
