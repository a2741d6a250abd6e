"""`python -m tf_matcomp.demo` without matplotlib: warned before training, table printed, no
plot written (the training itself is stubbed: this tests the plotting path only)."""

import os
import sys
import warnings

from tf_matcomp import demo


def test_demo_without_matplotlib_warns_first_prints_the_table_and_skips_the_plot(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    warned_before_training = []

    def fake_train(data, setting, *args, **kwargs):
        warned_before_training.append(any("matplotlib" in str(w.message) for w in caught))
        return demo.RunResult(
            setting.method, setting.label, setting.compresses, 0.9, 10, 40, 1.0, 0.1, None
        )

    monkeypatch.setattr(demo, "train_and_measure", fake_train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert demo.main(["--quick", "--verbose", "0", "--out", str(tmp_path)]) == 0
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("matplotlib" in m for m in messages), messages
    assert warned_before_training and all(warned_before_training)
    out = capsys.readouterr().out
    assert "baseline" in out and "plot: skipped (matplotlib is not installed)" in out
    assert not os.path.exists(tmp_path / "demo_accuracy_vs_size.png")


def test_plot_unavailable_reason_is_none_with_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", object())
    assert demo.plot_unavailable_reason() is None
