"""A signal that notifies a student when a grade is saved. This is the code
the site had with Django Channels, unchanged: the Switchboard channel layer
publishes the group message to user:{id}, where the student's browser on
/ws/notifications/ receives {"type": "grade_update", "data": {...}}."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Grade


@receiver(post_save, sender=Grade)
def grade_saved(sender, instance, created, **kwargs):
    message = {"type": "grade_update", "grade_id": instance.pk, "course": instance.course,
               "grade": instance.grade, "created": created}
    # After the commit: a rolled-back grade notifies nobody.
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(
        f"user_{instance.student_id}", message))
