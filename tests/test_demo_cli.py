"""The demo (`--quick`, in a subprocess), the `tf-matcomp` CLI (success and error paths) and
the two examples in quick mode."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import cli
from tf_matcomp import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
TIMEOUT = 240


def _run(args, cwd=None):
    env = dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return subprocess.run(
        [sys.executable] + args,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd or REPO,
        env=env,
    )


METHOD_LABELS = ("baseline", "low-rank", "simhash", "dictionary", "k-means", "pruning+k-means")


@pytest.mark.slow
def test_demo_quick(tmp_path):
    done = _run(["-m", "tf_matcomp.demo", "--quick", "--verbose", "2", "--out", str(tmp_path)])
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout[done.stdout.index("method ") :]
    rows = {
        line.split()[0]: line.split()
        for line in table.splitlines()[2:]
        if line and line.split()[0] in METHOD_LABELS
    }
    assert set(rows) == set(METHOD_LABELS)
    # Columns from the right: accuracy, params, bytes, ratio, s/epoch, ms/update.
    baseline_accuracy, _, baseline_bytes, _ = rows["baseline"][-6:-2]
    assert float(baseline_accuracy) > 0.9  # the dense MLP on the digits
    for method in METHOD_LABELS[1:]:
        assert rows[method][-7] == "hidden", rows[method]  # the layers the quick rows compress
        accuracy, _, size, ratio = rows[method][-6:-2]
        assert float(accuracy) > 0.5, rows[method]
        assert int(size) < int(baseline_bytes), rows[method]
        assert float(ratio) == pytest.approx(int(baseline_bytes) / int(size), abs=0.01)
    assert "alpha" in done.stdout and "compression_ratio" in done.stdout  # progress bars
    with open(os.path.join(tmp_path, "demo_accuracy_vs_size.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_demo_bad_data_path_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--data", str(tmp_path / "missing.npz")])
    assert exit_info.value.code == 2


def test_demo_loads_an_mnist_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "mnist.npz")
    np.savez(
        path,
        x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_train=np.arange(20) % 10,
        x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_test=np.arange(5),
    )
    data = demo.load_dataset(path)
    assert data.x_train.shape == (20, 784) and data.x_train.max() <= 1.0
    assert data.num_classes == 10
    np.savez(path, x_train=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y_train"):
        demo.load_dataset(path)


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def saved_mlp(tmp_path):
    inputs = tf.keras.Input((64,))
    h = tf.keras.layers.Dense(48, activation="relu", name="hidden")(inputs)
    out = tf.keras.layers.Dense(10, name="logits")(h)
    model = tf.keras.Model(inputs, out)
    path = str(tmp_path / "mlp.keras")
    model.save(path)
    return model, path


def test_cli_compress_and_info(saved_mlp, tmp_path, capsys):
    model, path = saved_mlp
    out = str(tmp_path / "out.keras")
    assert (
        cli.main(
            [
                "compress",
                path,
                "--method",
                "lowrank",
                "--rank",
                "400",
                "--layers",
                "hidden",
                "-o",
                out,
            ]
        )
        == 0
    )
    report = capsys.readouterr().out
    assert "hidden" in report and "k=12" in report  # ceil(48 · 100 / 400)
    stripped = tf.keras.models.load_model(out)
    a = model.get_layer("hidden").kernel.numpy()
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    w = (u[:, :12] * s[:12]) @ vt[:12]  # the rank-12 truncated SVD, independently
    h = np.maximum(x @ w + model.get_layer("hidden").bias.numpy(), 0)
    expected = h @ model.get_layer("logits").kernel.numpy() + model.get_layer("logits").bias.numpy()
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=1e-3, atol=1e-3)

    assert cli.main(["info", out]) == 0
    info = capsys.readouterr().out
    assert "stripped" in info and "low_rank" in info and "logits" in info


def test_cli_tflite_writes_builtin_ops_of_the_stripped_model(saved_mlp, tmp_path, capsys):
    model, path = saved_mlp
    compressed = str(tmp_path / "compressed.keras")
    args = ["compress", path, "--rank", "400", "--keep-training-form", "-o", compressed]
    assert cli.main(args) == 0
    out = str(tmp_path / "m.tflite")
    assert cli.main(["tflite", compressed, "-o", out]) == 0
    assert "saved" in capsys.readouterr().out
    interpreter = tf.lite.Interpreter(model_path=out)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    x = np.random.default_rng(2).standard_normal((1, 64)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    stripped = tf.keras.models.load_model(compressed)
    np.testing.assert_allclose(got, stripped(x).numpy(), rtol=1e-4, atol=1e-4)
    assert cli.main(["tflite", compressed, "-o", str(tmp_path / "m.bin")]) == 1
    assert "must end in .tflite" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "not_keras", "corrupt", "no_eligible"])
def test_cli_errors_are_one_line_and_nonzero(case, tmp_path, capsys):
    path = str(tmp_path / "model.keras")
    if case == "not_keras":
        path = str(tmp_path / "weights.txt")
        open(path, "w").write("hello")
    elif case == "corrupt":
        open(path, "wb").write(b"not a zip archive")
    elif case == "no_eligible":
        tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.ReLU()]).save(path)
    status = cli.main(["compress", path, "-o", str(tmp_path / "out.keras")])
    err = capsys.readouterr().err
    assert status != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("tf-matcomp compress: error:")


def test_cli_runs_as_a_module(saved_mlp, tmp_path):
    _, path = saved_mlp
    done = _run(["-m", "tf_matcomp.cli", "info", path])
    assert done.returncode == 0 and "hidden" in done.stdout, done.stderr[-2000:]
    done = _run(["-m", "tf_matcomp.cli", "info", str(tmp_path / "nope.keras")])
    assert done.returncode == 1
    # Importing TensorFlow prints a few C++ start-up lines that TF_CPP_MIN_LOG_LEVEL does not
    # silence on 2.21; ours is the one Python line, last, and there is no traceback.
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == f"tf-matcomp info: error: {tmp_path / 'nope.keras'}: no such file"
    assert "Traceback" not in done.stderr


# --- examples -------------------------------------------------------------------------------


def _example(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing (under Bazel, examples/ must be a data dependency)")
    return path


@pytest.mark.parametrize("update_option", [0, 1])
def test_cifar10_style_example_quick(update_option, tmp_path):
    hparams = (
        "name=cifar10_compression,rank=200,begin_compression_step=5,"
        f"compression_frequency=5,alpha_decrement_value=0.25,update_option={update_option}"
    )
    done = _run(
        [
            _example("cifar10_compression_train.py"),
            "--quick",
            "--train_dir",
            str(tmp_path),
            f"--compression_hparams={hparams}",
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = [line for line in done.stdout.splitlines() if line.startswith("step")][-1]
    assert last.split("alpha")[1].split() == ["0.00", "0.00"], done.stdout
    first, final = done.stdout.split("first loss ")[1].split(", last loss ")
    assert float(final.split(";")[0]) < float(first)


def test_eager_mnist_example_quick():
    done = _run([_example("mnist_eager_compression.py"), "--quick"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "alpha 0.00 0.00" in done.stdout, done.stdout
    accuracy = float(done.stdout.split("train accuracy ")[1].split()[0])
    assert accuracy > 0.6


def test_cli_help_is_fast_and_imports_no_tensorflow():
    done = _run(["-m", "tf_matcomp.cli", "compress", "--help"])
    assert done.returncode == 0 and "--ratio" in done.stdout
    assert done.stderr == ""  # none of TensorFlow's start-up lines
    done = _run(["-c", "import sys, tf_matcomp.cli; print('tensorflow' in sys.modules)"])
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_cli_reports_a_corrupt_keras_file_as_corrupt(tmp_path, capsys):
    path = str(tmp_path / "model.keras")
    open(path, "wb").write(b"not a zip archive")
    assert cli.main(["info", path]) == 1
    assert "corrupt" in capsys.readouterr().err


def test_cli_ratio_by_default_and_growth_is_an_error_unless_forced(saved_mlp, tmp_path, capsys):
    _, path = saved_mlp
    out = str(tmp_path / "out.keras")
    assert cli.main(["compress", path, "--method", "kmeans", "-o", out]) == 0
    report = capsys.readouterr().out
    ratio = float(report.split("compression_ratio ")[1].split(";")[0])
    assert ratio > 2  # the default --ratio 4, on the kernels (biases stay dense)
    args = ["compress", path, "--method", "lowrank", "--rank", "50", "-o", out]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "would not shrink" in err and "--force" in err
    assert cli.main(args + ["--force"]) == 0


def test_cli_refuses_files_that_are_not_regular_promptly(tmp_path, capsys):
    fifo = str(tmp_path / "pipe.keras")
    os.mkfifo(fifo)  # opening it for reading would block forever
    device = str(tmp_path / "zero.keras")
    os.symlink("/dev/zero", device)  # reading it would never end
    empty = str(tmp_path / "empty.keras")
    open(empty, "wb").close()
    for path, message in (
        (fifo, "not a regular file"),
        (device, "not a regular file"),
        (empty, "empty file"),
    ):
        assert cli.main(["info", path]) == 1
        assert f"{path}: {message}" in capsys.readouterr().err
