#!/usr/bin/python3
"""Runs the Python client's tests against the real binary:

    /usr/bin/python3 clients/python/tests/run.py build/switchboard [unittest args]

The binary comes from argv[1] when it looks like a path, else
$SWITCHBOARD_BIN, else <repo>/build/switchboard (as the integration tests)."""

import os
import sys
import unittest

import support
from support import harness

if __name__ == "__main__":
    harness._pop_path_arg("SWITCHBOARD_BIN")
    harness._pop_path_arg("SBCTL_BIN")
    names = sys.argv[1:] or [n[:-3] for n in sorted(os.listdir(support.HERE))
                             if n.startswith("test_") and n.endswith(".py")]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
