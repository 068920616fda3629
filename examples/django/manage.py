#!/usr/bin/python3
"""The example project's manage.py (docs/backends.md)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campus.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
