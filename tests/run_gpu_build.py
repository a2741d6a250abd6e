"""Bazel's entry point for //tests:test_gpu_build: points the loader at the GPU build of the op
library (`--library=PATH`, given where nvcc exists), then runs tests/test_gpu_build.py and the
native tests of the ops' test files against it, in one pytest run (one JUnit report)."""

import os
import sys

import pytest

# The ops' own tests, run against the GPU-enabled library: its CPU kernels must behave exactly
# as the CPU-only build's.
SMOKE_FILES = ("test_low_rank_blend.py", "test_simhash.py", "test_kmeans.py")
LIBRARY_FLAG = "--library="

if __name__ == "__main__":
    test_file, *rest = sys.argv[1:]
    files = [test_file]
    for arg in rest:
        if arg.startswith(LIBRARY_FLAG):
            os.environ["TF_MATCOMP_OPS_LIBRARY"] = os.path.abspath(arg[len(LIBRARY_FLAG) :])
            here = os.path.dirname(os.path.abspath(test_file))
            files += [os.path.join(here, name) for name in SMOKE_FILES]
    report = os.environ.get("XML_OUTPUT_FILE")
    extra = [f"--junitxml={report}"] if report else []
    # -k native: the GPU library's native kernels; the composite halves are the CPU-only run's.
    smoke = ["-k", "native or gpu_build"] if len(files) > 1 else []
    sys.exit(pytest.main(["-p", "no:cacheprovider", "-q", *extra, *smoke, *files]))
