"""Adds up the pytest results Bazel collected (each py_test writes JUnit XML to test.xml) and
prints one closing line: `tests: N passed, N failed, N skipped`. Exits 1 when none ran."""

import glob
import os
import sys
import xml.etree.ElementTree as ElementTree


def main(testlogs: str) -> int:
    passed = failed = skipped = 0
    for path in glob.glob(os.path.join(testlogs, "**", "test.xml"), recursive=True):
        for suite in ElementTree.parse(path).getroot().iter("testsuite"):
            total = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += total - bad - skip
            failed += bad
            skipped += skip
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if passed + failed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
