"""Bazel's entry point for one pytest file: `bazel test //tests:test_x` runs `pytest test_x.py`.

The JUnit report goes where Bazel asks (XML_OUTPUT_FILE), so scripts/summarize_tests.py can add
up the individual test cases.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    report = os.environ.get("XML_OUTPUT_FILE")
    extra = [f"--junitxml={report}"] if report else []
    sys.exit(pytest.main(["-p", "no:cacheprovider", "-q", *extra, *sys.argv[1:]]))
