from django.urls import path

from notifications import views

urlpatterns = [
    path("notify/<int:user_id>/", views.notify, name="notify"),
]
