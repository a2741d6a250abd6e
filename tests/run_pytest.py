"""Bazel's entry point for one pytest file: `bazel test //tests:test_x` runs `pytest test_x.py`."""
import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(["-p", "no:cacheprovider", "-q", *sys.argv[1:]]))
