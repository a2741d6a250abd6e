"""Bounded fuzzing of every op × implementation × mode, of the raw kernels and of `_core`.

Seeded random calls mix valid and invalid shapes, dtypes and attributes with hostile values
(NaN, ±inf, huge, denormal, constant) and, for `_core`, strided, transposed, broadcast and
misaligned views. For every call the generator knows from the documented rules whether the
arguments are valid, so each engine is held to one of three verdicts:

  * VALID: a result, checked against a NumPy oracle;
  * STATIC: invalid whatever the values: ValueError / TypeError / InvalidArgumentError;
  * RUNTIME: invalid only because of the values (non-finite, out of range): an
    InvalidArgumentError, except under XLA, where the composites cannot raise and give the
    documented result instead (README, "Non-finite values, also under XLA").

Each op's cases run in a subprocess, so a crash or a hang fails its test instead of the run.
The suite's run is fixed (seed 2026); a longer campaign: TF_MATCOMP_FUZZ_CASES=400
TF_MATCOMP_FUZZ_SEED=7 pytest tests/test_fuzz.py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import needs_plain_memory

CASES_PER_OP = int(os.environ.get("TF_MATCOMP_FUZZ_CASES", 30))
FUZZ_SEED = int(os.environ.get("TF_MATCOMP_FUZZ_SEED", 2026))
WORKER_TIMEOUT_S = max(280, 10 * CASES_PER_OP)
VALID, STATIC, RUNTIME, EITHER = "valid", "static", "runtime", "either"
PROJECTIONS = ("gaussian", "hadamard")
PROJECTION_CHOICES = PROJECTIONS + ("gaussian", "bogus")
OPS = (  # appended to, never reordered: an op's index seeds its cases
    "low_rank_blend",
    "kmeans_quantize",
    "kmeans_dequantize",
    "simhash_compress",
    "simhash_decompress",
    "simhash_projection",
    "core",
    "householder_q",
)


# --------------------------------------------------------------------------------------------
# The test: one subprocess per op, every reported problem is a failure.


@pytest.mark.parametrize("op", OPS)
def test_fuzzed_calls_give_oracle_results_or_clear_errors(op):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), op],
        capture_output=True,
        text=True,
        env=env,
        timeout=WORKER_TIMEOUT_S,
    )
    last_call = [line for line in result.stderr.splitlines() if line.startswith("fuzz call:")]
    assert result.returncode == 0, (
        f"worker died ({result.returncode}) in {last_call[-1:]}: {result.stderr[-3000:]}"
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["calls"] >= min(CASES_PER_OP, 7), report
    assert report["problems"] == [], "\n".join(report["problems"][:20])


# --------------------------------------------------------------------------------------------
# Values and verdict helpers (used by the worker).


def _spoiled(rng, shape, dtype, spoil):
    """N(0,1) values of `shape` with one kind of hostile content, cast to `dtype`."""
    x = rng.standard_normal(shape)
    if x.size and spoil in ("nan", "inf", "-inf"):
        x.flat[rng.integers(x.size)] = float(spoil)
    elif spoil == "zeros":
        x[...] = 0
    elif spoil == "constant":
        x[...] = 1.5
    elif spoil == "huge":  # finite in the dtype, far beyond what products keep finite
        x = np.clip(x, -1, 1) * (3e38 if dtype == np.float32 else 1e300)
    elif spoil == "denormal":
        x = x * (1e-40 if dtype == np.float32 else 1e-310)
    return x.astype(dtype)


def _has_nonfinite(*arrays):
    return any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrays)


def _close(got, want, scale, eps, what):
    """'' when |got - want| <= eps·scale (+ a denormal-sized floor) where `want` is finite and
    representable, else a description of the worst element."""
    got = np.asarray(got, np.float64)
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, expected {want.shape}"
    limit = 0.5 * np.finfo(np.float32 if eps > 1e-12 else np.float64).max
    checked = np.isfinite(want) & (np.abs(want) < limit) & (scale < limit)
    error = np.where(checked, np.abs(got - want), 0)
    allowed = eps * scale + 1e-30
    if (error > allowed).any():
        i = np.unravel_index(np.argmax(error - allowed), error.shape)
        return f"{what}: element {i} is {got[i]!r}, expected {want[i]!r}"
    return ""


def _eps(dtype):
    return {np.float16: 4e-3, np.float32: 2e-6, np.float64: 1e-13}[np.dtype(dtype).type]


# --------------------------------------------------------------------------------------------
# Case generators: each returns (kwargs for the wrapper, verdict, oracle(result, engine)).


def _case_low_rank_blend(rng):
    m, n, k = (int(rng.choice([0, 1, 3, 8, 17])) for _ in range(3))
    dtype = rng.choice([np.float32, np.float32, np.float64, np.float16, np.int32])
    spoil = rng.choice([None, None, "nan", "inf", "huge", "denormal", "zeros"])
    shapes = {"a": (m, n), "b": (m, k), "c": (k, n)}
    verdict = VALID if dtype != np.int32 else STATIC
    if rng.random() < 0.25:  # one wrong dimension or rank
        arg = rng.choice(list(shapes))
        shapes[arg] = shapes[arg] + (2,) if rng.random() < 0.3 else (shapes[arg][0] + 1, 1)
        verdict = STATIC
    arrays = {
        name: _spoiled(rng, shape, dtype, spoil if name == "a" else None)
        for name, shape in shapes.items()
    }
    alpha = np.array(rng.choice([0.0, 0.25, 1.0, -0.5, 2.0, np.nan, np.inf]), dtype)
    if rng.random() < 0.1:
        alpha, verdict = np.array([0.5, 0.5], dtype), STATIC

    def oracle(result, engine):
        a, b, c = (arrays[x].astype(np.float64) for x in "abc")
        al = float(alpha)
        want = al * a if k == 0 else al * a + (1 - al) * (b @ c)
        scale = abs(al) * np.abs(a) + (0 if k == 0 else abs(1 - al) * (np.abs(b) @ np.abs(c)))
        return _close(result, want, (k + 2) * scale, _eps(dtype), "W")

    return dict(arrays, alpha=alpha), verdict, oracle


def _case_householder_q(rng):
    m, n = (int(rng.choice([0, 1, 3, 8, 49, 130])) for _ in range(2))
    dtype = rng.choice([np.float32, np.float32, np.float64, np.float16, np.int32])
    spoil = rng.choice([None, None, "nan", "inf", "huge", "denormal", "zeros", "constant"])
    shape = (m, n) if rng.random() > 0.1 else (m, n, 2)
    y = _spoiled(rng, shape, dtype, spoil)
    valid = dtype in (np.float32, np.float64) and len(shape) == 2 and m >= n
    verdict = VALID if valid else STATIC

    def oracle(result, engine):
        if result.shape != (m, n):
            return f"Q: shape {result.shape}, expected {(m, n)}"
        if _has_nonfinite(y):  # NaN in Q where they reach: nothing more is promised
            return ""
        # The defining identities, whatever the rank: QᵀQ = I, QᵀY upper triangular, Q·QᵀY = Y.
        q, a = result.astype(np.float64), y.astype(np.float64)
        r = q.T @ a
        eps = (m + n + 2) * _eps(dtype)
        largest = np.full(a.shape, np.abs(a).max() if a.size else 0.0)
        return (
            _close(q.T @ q, np.eye(n), np.ones((n, n)), eps, "QᵀQ")
            or _close(np.tril(r, -1), np.zeros_like(r), largest[:n], eps, "R")
            or _close(q @ r, a, largest, eps, "Q·R")
        )

    return {"y": y}, verdict, oracle


def _case_kmeans_quantize(rng):
    m, n = int(rng.choice([0, 1, 4, 9, 32])), int(rng.choice([0, 1, 4, 12, 24]))
    dtype = rng.choice([np.float32, np.float32, np.float64, np.int32])
    spoil = rng.choice([None, None, "nan", "inf", "huge", "denormal", "constant"])
    kwargs = dict(
        a=_spoiled(rng, (m, n), dtype if dtype != np.int32 else np.float32, spoil).astype(dtype),
        num_clusters=int(rng.choice([1, 2, 4, 16, 300, 0, 70000])),
        block_size=int(rng.choice([1, 1, 1, 2, 3, 4, 0])),
        max_iterations=int(rng.choice([1, 5, 100, 0])),
        seed=int(rng.choice([0, 7, -1])),
        snap_zero=bool(rng.random() < 0.3),
        method=str(rng.choice(["lloyd", "lloyd", "optimal", "bogus"])),
    )
    k, bs = kwargs["num_clusters"], kwargs["block_size"]
    static_ok = (
        dtype != np.int32
        and 1 <= k <= 65536
        and bs >= 1
        and n % bs == 0
        and kwargs["max_iterations"] >= 1
        and kwargs["seed"] >= 0
        and kwargs["method"] in ("lloyd", "optimal")
        and (kwargs["method"] == "lloyd" or (bs == 1 and k <= 256))
    )
    a = kwargs["a"]
    bad_values = a.dtype.kind == "f" and (not np.isfinite(a).all() or (np.abs(a) > 1e150).any())
    verdict = STATIC if not static_ok else RUNTIME if bad_values else VALID

    def oracle(result, engine):
        codebook, codes = (np.asarray(x) for x in result)
        if verdict == RUNTIME:  # under XLA: a NaN codebook, which the updates skip
            return "" if np.isnan(codebook).any() else "no NaN in the codebook of bad values"
        if codebook.shape != (k, bs) or codes.shape != (m, n // bs):
            return f"shapes {codebook.shape}, {codes.shape}"
        if codes.dtype != (np.uint8 if k <= 256 else np.int32):
            return f"codes dtype {codes.dtype}"
        if codes.size and (codes.min() < 0 or codes.max() >= k):
            return f"codes outside [0, {k})"
        if not np.isfinite(codebook).all():
            return "non-finite codebook for finite values"
        if kwargs["snap_zero"] or not a.size:
            return ""
        # Any partition coded by its clusters' means (or nearer) is no worse than one mean.
        blocks = a.reshape(-1, bs).astype(np.float64)
        sse = ((blocks - codebook.astype(np.float64)[codes.reshape(-1)]) ** 2).sum()
        total = ((blocks - blocks.mean(0)) ** 2).sum()
        if sse > total * (1 + 1e-4) + 1e-30:
            return f"error {sse} above the one-centroid error {total}"
        return ""

    return kwargs, verdict, oracle


def _case_kmeans_dequantize(rng):
    k, bs = int(rng.choice([0, 1, 3, 16, 300])), int(rng.choice([1, 2, 3]))
    m, blocks = int(rng.choice([0, 1, 5])), int(rng.choice([0, 1, 4]))
    code_dtype = rng.choice([np.uint8, np.int32, np.int64, np.float32])
    codebook = _spoiled(rng, (k, bs), rng.choice([np.float32, np.float64]), None)
    top = min(k, 256) if code_dtype == np.uint8 else k
    codes = rng.integers(0, max(top, 1), (m, blocks)).astype(code_dtype)
    out_of_range = codes.size and (k == 0 or rng.random() < 0.3)
    if out_of_range and k:
        codes.flat[0] = rng.choice([k, k + 5] + ([-1] if code_dtype != np.uint8 else []))
    if code_dtype == np.uint8 and codes.size and codes.max() >= k:
        out_of_range = True
    # No codebook rows for codes that exist: invalid whatever the codes hold (XLA raises too).
    empty_codebook = k == 0 and codes.size
    verdict = (
        STATIC if code_dtype == np.float32 or empty_codebook else RUNTIME if out_of_range else VALID
    )

    def oracle(result, engine):
        index = codes.astype(np.int64)
        if verdict == RUNTIME:  # documented: XLA's gather clamps into [0, K - 1]
            index = np.clip(index, 0, k - 1)
        want = codebook[index].reshape(m, blocks * bs)
        return "" if np.array_equal(np.asarray(result), want) else "not codebook[codes]"

    return dict(codebook=codebook, codes=codes), verdict, oracle


def _unpack(signs, n, dtype):
    bits = np.unpackbits(signs, axis=1, bitorder="little")[:, :n]
    return np.where(bits > 0, 1.0, -1.0).astype(dtype)


def _case_simhash_compress(rng):
    m, n = int(rng.choice([0, 1, 3, 8, 20])), int(rng.choice([0, 1, 5, 9, 16]))
    dtype = rng.choice([np.float32, np.float32, np.float64, np.float16])
    spoil = rng.choice([None, None, "nan", "inf", "huge", "denormal", "zeros"])
    kwargs = dict(
        a=_spoiled(rng, (m, n), dtype, spoil),
        num_bits=int(rng.choice([1, 2, 9, 33, 0, -3])),
        seed=int(rng.choice([0, 5, 123456789, -1])),
        scale=str(rng.choice(["least_squares", "least_squares", "norm", "bogus"])),
        projection=str(rng.choice(PROJECTION_CHOICES)),
    )
    static_ok = (
        dtype != np.float16
        and kwargs["num_bits"] >= 1
        and kwargs["seed"] >= 0
        and kwargs["scale"] in ("least_squares", "norm")
        and kwargs["projection"] in PROJECTIONS
    )
    a = kwargs["a"]
    # Huge finite values may or may not overflow the scales: either outcome is documented.
    verdict = (
        STATIC
        if not static_ok
        else RUNTIME
        if _has_nonfinite(a)
        else EITHER
        if spoil == "huge"
        else VALID
    )

    def oracle(result, engine):
        from tf_matcomp import _core

        signs, scales = (np.asarray(x) for x in result)
        if verdict == RUNTIME:  # under XLA: non-finite scales, which the updates skip
            return "" if not np.isfinite(scales).all() else "finite scales for bad values"
        if verdict == EITHER:
            return ""
        k = kwargs["num_bits"]
        if signs.shape != (k, (n + 7) // 8) or signs.dtype != np.uint8 or scales.shape != (n,):
            return f"shapes {signs.shape} {signs.dtype} {scales.shape}"
        if not np.isfinite(scales).all():
            return "non-finite scales for finite values"
        r = _core.simhash_projection(
            m, k, seed=kwargs["seed"], dtype=dtype, projection=kwargs["projection"]
        ).astype(np.float64)
        a64 = a.astype(np.float64)
        projected, bound = r.T @ a64, np.abs(r.T) @ np.abs(a64)
        s = _unpack(signs, n, np.float64)
        clear = np.abs(projected) > 1e-4 * bound + 1e-25
        if (np.where(projected >= 0, 1.0, -1.0) != s)[clear].any():
            return "signs differ from sign(Rᵀa)"
        rs = r @ s
        norms2 = (rs**2).sum(0)
        if kwargs["scale"] == "least_squares":
            want = np.where(norms2 > 0, (a64 * rs).sum(0) / np.where(norms2 > 0, norms2, 1), 0)
        else:
            want = np.where(norms2 > 0, np.linalg.norm(a64, axis=0) / np.sqrt(norms2), 0)
        denominator = np.sqrt(np.where(norms2 > 0, norms2, 1))
        scale = np.linalg.norm(a64, axis=0) / denominator * (m + k)
        return _close(scales, want, scale, _eps(dtype) * 10, "scales")

    return kwargs, verdict, oracle


def _case_simhash_decompress(rng):
    k, n, m = (int(rng.choice(c)) for c in ([1, 3, 9, 0], [0, 1, 5, 17], [0, 1, 6, -1]))
    dtype = rng.choice([np.float32, np.float64])
    width = (n + 7) // 8 + (1 if rng.random() < 0.15 else 0)
    signs = rng.integers(0, 256, (k, width)).astype(np.uint8)
    if rng.random() < 0.1:
        signs = signs.astype(np.int32)
    kwargs = dict(
        signs=signs,
        scales=_spoiled(rng, (n,), dtype, rng.choice([None, "nan", "zeros"])),
        num_rows=m,
        seed=int(rng.choice([0, 9, -2])),
        projection=str(rng.choice(PROJECTION_CHOICES)),
    )
    static_ok = (
        k >= 1
        and width == (n + 7) // 8
        and m >= 0
        and kwargs["seed"] >= 0
        and signs.dtype == np.uint8
        and kwargs["projection"] in PROJECTIONS
    )
    verdict = VALID if static_ok else STATIC

    def oracle(result, engine):
        from tf_matcomp import _core

        r = _core.simhash_projection(
            m, k, seed=kwargs["seed"], dtype=dtype, projection=kwargs["projection"]
        ).astype(np.float64)
        s = _unpack(signs, n, np.float64)
        scales = kwargs["scales"].astype(np.float64)
        want = (r @ s) * scales
        scale = (np.abs(r) @ np.abs(s)) * np.abs(scales) * (k + 1)
        return _close(result, want, scale, _eps(dtype), "Â")

    return kwargs, verdict, oracle


def _case_simhash_projection(rng):
    kwargs = dict(
        num_rows=int(rng.choice([0, 1, 7, 100, -1])),
        num_bits=int(rng.choice([1, 5, 64, 0])),
        seed=int(rng.choice([0, 3, 2**62, -1])),
        dtype=rng.choice(["float32", "float64", "float16"]),
        projection=str(rng.choice(PROJECTION_CHOICES)),
    )
    static_ok = (
        kwargs["num_rows"] >= 0
        and kwargs["num_bits"] >= 1
        and kwargs["seed"] >= 0
        and kwargs["dtype"] != "float16"
        and kwargs["projection"] in PROJECTIONS
    )

    def oracle(result, engine):
        from tf_matcomp import _core

        want = _core.simhash_projection(
            kwargs["num_rows"],
            kwargs["num_bits"],
            seed=kwargs["seed"],
            dtype=kwargs["dtype"],
            projection=kwargs["projection"],
        )
        return "" if np.array_equal(np.asarray(result), want) else "R differs from _core's"

    return kwargs, VALID if static_ok else STATIC, oracle


# --------------------------------------------------------------------------------------------
# Engines: how one case is run (wrapper × implementation × mode, or the raw kernel).

_ENGINES = (
    ("native", "eager"),
    ("native", "function"),
    ("native", "dynamic"),  # tf.function over shapes of unknown size: run-time checks
    ("native", "graph"),
    ("composite", "eager"),
    ("composite", "function"),
    ("composite", "dynamic"),
    ("composite", "graph"),
    ("composite", "jit"),
    ("raw", "eager"),
    ("raw", "graph"),
)
_TENSOR_ARGS = {"a", "b", "c", "alpha", "codebook", "codes", "signs", "scales", "y"}


def _call_wrapper(op, kwargs, implementation):
    import tf_matcomp

    fn = getattr(tf_matcomp.ops, op)
    if op == "kmeans_dequantize":  # one implementation (tf.gather)
        return fn(**kwargs)
    return fn(**kwargs, implementation=implementation)


def _call_raw(op, kwargs):
    """The library's op directly, with the attrs the wrapper would pass."""
    import tensorflow as tf

    from tf_matcomp.ops import _loader

    lib = _loader.native_library().module
    if op == "low_rank_blend":
        return lib.matcomp_low_rank_blend(kwargs["a"], kwargs["b"], kwargs["c"], kwargs["alpha"])
    if op == "householder_q":
        return lib.matcomp_householder_q(kwargs["y"])
    if op == "kmeans_quantize":
        code_dtype = tf.uint8 if kwargs["num_clusters"] <= 256 else tf.int32
        return tuple(lib.matcomp_k_means_quantize(**kwargs, code_dtype=code_dtype))
    if op == "simhash_compress":
        return tuple(lib.matcomp_simhash_compress(**kwargs))
    if op == "simhash_decompress":
        return lib.matcomp_simhash_decompress(**kwargs)
    return lib.matcomp_simhash_projection(
        num_rows=kwargs["num_rows"],
        num_bits=kwargs["num_bits"],
        seed=kwargs["seed"],
        projection=kwargs["projection"],
        T=tf.as_dtype(kwargs["dtype"]),
    )


def _run(op, kwargs, implementation, mode):
    import tensorflow as tf

    tensors = {k: v for k, v in kwargs.items() if k in _TENSOR_ARGS}
    attrs = {k: v for k, v in kwargs.items() if k not in _TENSOR_ARGS}

    def call(**inputs):
        if implementation == "raw":
            return _call_raw(op, {**attrs, **inputs})
        return _call_wrapper(op, {**attrs, **inputs}, implementation)

    def numpy(result):
        if isinstance(result, (tuple, list)):
            return tuple(np.asarray(x) for x in result)
        return np.asarray(result)

    if mode == "graph":
        with tf.Graph().as_default():
            outputs = call(**{k: tf.constant(v) for k, v in tensors.items()})
            with tf.compat.v1.Session() as session:
                return numpy(session.run(outputs))
    if mode == "eager":
        if implementation == "raw":
            # Typed tensors: TF's generated wrapper casts NumPy input to the op's dtype before any
            # of our code sees it (int32 300 becomes uint8 44); the kernels are what is fuzzed.
            tensors = {k: tf.constant(v) for k, v in tensors.items()}
        return numpy(call(**tensors))
    if mode == "dynamic":
        signature = [tf.TensorSpec([None] * v.ndim, tf.as_dtype(v.dtype)) for v in tensors.values()]
        names = list(tensors)
        function = tf.function(lambda *xs: call(**dict(zip(names, xs))), input_signature=signature)
        return numpy(function(*tensors.values()))
    function = tf.function(lambda: call(**tensors), jit_compile=mode == "jit")
    return numpy(function())


def _documented_refusal(kwargs, implementation, mode, error):
    """The hadamard composite needs the rows (and bits) known when the graph is built."""
    return (
        kwargs.get("projection") == "hadamard"
        and (implementation, mode) == ("composite", "dynamic")
        and isinstance(error, ValueError)
        and "must be known when the graph is built" in str(error)
    )


def _check_error(error, verdict, mode):
    import tensorflow as tf

    allowed = (ValueError, TypeError, tf.errors.InvalidArgumentError)
    if not isinstance(error, allowed):
        return f"{type(error).__name__} is not a clear error: {error}"
    if not str(error).strip():
        return f"{type(error).__name__} without a message"
    if verdict == VALID:
        return f"valid arguments refused: {type(error).__name__}: {str(error)[:300]}"
    if verdict == RUNTIME and mode == "jit":
        return f"XLA raised instead of the documented result: {str(error)[:300]}"
    return ""


def _fuzz_op(op, rng):
    generate = globals()[f"_case_{op}"]
    calls, problems = 0, []
    for case in range(CASES_PER_OP):
        kwargs, verdict, oracle = generate(rng)
        for implementation, mode in _ENGINES:
            if op == "kmeans_dequantize" and implementation != "composite":
                continue
            if op == "simhash_projection" and mode == "dynamic":
                continue  # no tensor arguments
            calls += 1
            label = f"{op} case {case} {implementation}/{mode} ({verdict}) {_describe(kwargs)}"
            print(f"fuzz call: {label}", file=sys.stderr, flush=True)  # names a crashing call
            try:
                result = _run(op, kwargs, implementation, mode)
            except Exception as error:  # noqa: BLE001 - every exception is judged
                problem = (
                    ""
                    if _documented_refusal(kwargs, implementation, mode, error)
                    else _check_error(error, verdict, mode)
                )
            else:
                if verdict == STATIC or (verdict == RUNTIME and mode != "jit"):
                    problem = f"accepted invalid arguments, returned {_describe(result)}"
                else:
                    problem = oracle(result, (implementation, mode))
            if problem:
                problems.append(f"{label}: {problem}")
    return calls, problems


def _describe(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    if isinstance(value, np.ndarray):
        bad = "" if value.dtype.kind != "f" or np.isfinite(value).all() else " non-finite"
        return f"{value.dtype}{list(value.shape)}{bad}"
    return repr(value)


# --------------------------------------------------------------------------------------------
# _core: views, alignment and dtypes against its own contiguous result and the kernel's.


def _views(rng, shape, dtype):
    """(name, array) pairs holding the same values as `base` in several memory layouts."""
    base = _spoiled(rng, shape, dtype, None)
    wide = np.zeros((shape[0], 2 * shape[1]), dtype)
    wide[:, ::2] = base
    buffer = np.zeros(base.nbytes + 1, np.uint8)
    misaligned = np.frombuffer(buffer.data, dtype, base.size, offset=1).reshape(shape)
    buffer[1:] = np.frombuffer(base.tobytes(), np.uint8)
    return base, [
        ("strided", wide[:, ::2]),
        ("fortran", np.asfortranarray(base)),
        ("transposed", np.ascontiguousarray(base.T).T),
        ("misaligned", misaligned),
        ("readonly", np.frombuffer(base.tobytes(), dtype).reshape(shape)),
    ]


def _fuzz_core(rng):
    from tf_matcomp import _core, ops

    calls, problems = 0, []
    for case in range(CASES_PER_OP):
        m, n = int(rng.choice([1, 4, 16])), int(rng.choice([2, 8, 24]))
        dtype = rng.choice([np.float32, np.float64])
        base, views = _views(rng, (m, n), dtype)
        k, bits, seed = int(rng.choice([2, 16])), int(rng.choice([3, 17])), int(rng.integers(99))
        calls_here = {
            "kmeans_quantize": (
                lambda x: _core.kmeans_quantize(x, k, block_size=2, seed=seed),
                lambda: ops.kmeans_quantize(
                    base, k, block_size=2, seed=seed, implementation="native"
                ),
            ),
            "simhash_compress": (
                lambda x: _core.simhash_compress(x, bits, seed=seed),
                lambda: ops.simhash_compress(base, bits, seed=seed, implementation="native"),
            ),
        }
        for name, (core_call, kernel_call) in calls_here.items():
            want = tuple(np.asarray(x) for x in kernel_call())
            for view_name, view in [("contiguous", base)] + views:
                calls += 1
                got = core_call(view)
                if not all(np.array_equal(g, w) for g, w in zip(got, want)):
                    problems.append(f"_core.{name} case {case} on a {view_name} view differs")
        # Wrong kinds of arrays: a clear error each, never a crash.
        for bad in (
            base.astype(np.int32),
            base.astype(np.float16),
            base.reshape(-1),
            base[None],
            np.array([[object()]]),
        ):
            for name, call in (
                ("kmeans_quantize", lambda x: _core.kmeans_quantize(x, k)),
                ("simhash_compress", lambda x: _core.simhash_compress(x, bits)),
            ):
                calls += 1
                try:
                    call(bad)
                    problems.append(f"_core.{name} accepted {_describe(bad)}")
                except (ValueError, TypeError) as error:
                    if not str(error).strip():
                        problems.append(f"_core.{name}: {type(error).__name__} without a message")
    return calls, problems


# --------------------------------------------------------------------------------------------
# Allocation failure: under an address-space limit a little above what the process holds, an op
# whose scratch or output does not fit must raise (ResourceExhaustedError / MemoryError, never a
# crash), and the process must carry on.

ALLOCATION_SIZE = 6144  # a 144 MiB float32 input, allocated before the limit
ALLOCATION_MARGIN = 100 << 20  # what the limit leaves: less than LowRankBlend's output


def _fuzz_allocation():
    import resource

    import tensorflow as tf

    from tf_matcomp import _core, ops

    size = ALLOCATION_SIZE
    a = tf.constant(np.random.default_rng(0).standard_normal((size, size), dtype=np.float32))
    a_np = a.numpy()
    calls = {
        "kmeans_quantize": lambda: ops.kmeans_quantize(a, 16, implementation="native"),
        "kmeans_quantize blocks": lambda: ops.kmeans_quantize(
            a, 256, block_size=4, max_iterations=2, implementation="native"
        ),
        "simhash_compress": lambda: ops.simhash_compress(a, 1025, implementation="native"),
        "simhash_decompress": lambda: ops.simhash_decompress(
            tf.zeros([1025, size // 8], tf.uint8), tf.ones([size]), size, implementation="native"
        ),
        "low_rank_blend": lambda: ops.low_rank_blend(
            a, a[:, :512], a[:512, :], 0.5, implementation="native"
        ),
        "_core.kmeans_quantize": lambda: _core.kmeans_quantize(a_np, 16),
        "_core.simhash_compress": lambda: _core.simhash_compress(a_np, 1025),
    }
    small = a[:16, :16]  # warm every kernel up first: what the limit counts is then scratch
    ops.kmeans_quantize(small, 4, implementation="native")
    ops.kmeans_quantize(small, 4, block_size=4, implementation="native")
    ops.simhash_compress(small, 9, implementation="native")
    ops.low_rank_blend(small, small[:, :2], small[:2, :], 0.5, implementation="native")
    _core.kmeans_quantize(a_np[:16, :16], 4)
    with open("/proc/self/status") as status:
        held = next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (held + ALLOCATION_MARGIN, resource.RLIM_INFINITY))
    problems, refused = [], []
    for name, call in calls.items():
        try:
            call()  # a call whose scratch and output fit the limit may succeed
        except (tf.errors.ResourceExhaustedError, MemoryError):
            refused.append(name)
        except Exception as error:  # noqa: BLE001 - any other kind is a problem
            problems.append(f"{name}: {type(error).__name__}: {str(error)[:200]}")
    if "low_rank_blend" not in refused:  # its 144 MiB output cannot fit: the limit held
        problems.append(f"the limit did not bind: only {refused} were refused")
    return len(calls), problems


@needs_plain_memory
def test_allocation_failure_is_an_error_and_the_process_carries_on():
    test_fuzzed_calls_give_oracle_results_or_clear_errors("allocation")


def _worker(op):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if op == "allocation":
        calls, problems = _fuzz_allocation()
    else:
        rng = np.random.default_rng([FUZZ_SEED, OPS.index(op)])
        calls, problems = _fuzz_core(rng) if op == "core" else _fuzz_op(op, rng)
    print(json.dumps({"calls": calls, "problems": problems}))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _worker(sys.argv[1])
