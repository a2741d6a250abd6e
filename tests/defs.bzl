"""One Bazel py_test per pytest file, so Bazel runs them in parallel and caches each."""

def pytest_files(srcs, deps = [], data = [], sizes = {}):
    for src in srcs:
        native.py_test(
            name = src[:-len(".py")],
            srcs = [src, "run_pytest.py"],
            main = "run_pytest.py",
            args = ["$(location %s)" % src],
            deps = deps,
            data = data,
            python_version = "PY3",
            size = sizes.get(src, "medium"),
        )
