"""The MNIST example script (examples/mnist.py), run on a tiny fake data set.

No test needs the network or the real data: each writes four small IDX files (200 training and
50 test images of 28 x 28 with a pattern a small network learns in a few epochs) and passes
their directory as ``--data-dir``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import fastmlp as fm
import numpy as np
import pytest
from fake_mnist import N_TEST, N_TRAIN, write_fake_mnist
from fastmlp.datasets import mnist as mnist_data

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """examples/mnist.py imported as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("fastmlp_example_mnist", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the four standard IDX files of a tiny learnable data set."""
    return write_fake_mnist(tmp_path_factory.mktemp("fake-mnist"))


def _run(script: ModuleType, data_dir: Path, *flags: str) -> int:
    status: int = script.main(["--data-dir", str(data_dir), "--epochs", "2", *flags])
    return status


def _accuracy(output: str) -> float:
    match = re.search(r"test accuracy: ([0-9.]+)", output)
    assert match, output
    return float(match.group(1))


def test_defaults_are_the_classic_setup(script: ModuleType) -> None:
    args = script.parse_args([])
    assert args.dataset == "mnist"
    assert args.hidden == [100]
    assert args.activation == "sigmoid"
    assert args.optimizer == "sgd" and args.lr == 0.1
    assert (args.batch_size, args.epochs, args.seed, args.verbose) == (64, 10, 0, 1)
    assert args.threads is None and args.data_dir is None
    assert args.save is None and args.plot is None


@pytest.mark.parametrize(
    ("name", "expected_lr"),
    [("adam", 0.001), ("adamw", 0.001), ("adagrad", 0.001), ("rmsprop", 0.001)],
)
def test_other_optimizers_default_to_their_keras_learning_rate(
    script: ModuleType, name: str, expected_lr: float
) -> None:
    args = script.parse_args(["--optimizer", name])
    optimizer = script.make_optimizer(args.optimizer, args.lr)
    assert optimizer.name == name
    assert optimizer.get_config()["learning_rate"] == pytest.approx(expected_lr)
    explicit = script.parse_args(["--optimizer", name, "--lr", "0.02"])
    assert (
        script.make_optimizer(explicit.optimizer, explicit.lr).get_config()["learning_rate"] == 0.02
    )


def test_main_prints_accuracy_speed_and_first_labels(
    script: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(script, data_dir, "--verbose", "2") == 0
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out
    assert re.search(r"Test loss: [0-9.]+ - test accuracy: [0-9.]+ \([0-9.]+%\)", out), out
    assert re.search(r"[0-9.]+ s/epoch, [0-9,]+ samples/s", out), out
    assert re.search(r"Data loading: [0-9.]+ s", out), out
    predicted = re.search(r"First 10 test images, predicted: ((?:\d ){9}\d)$", out, re.M)
    actual = re.search(r"First 10 test images, actual: +((?:\d ){9}\d)$", out, re.M)
    assert predicted and actual, out
    y_test = mnist_data.load_data(path=data_dir)[1][1]
    assert actual.group(1) == " ".join(str(int(v)) for v in y_test[:10])


def test_the_fake_data_is_learned(
    script: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole pipeline (scaling, labels, training, evaluation) works end to end.
    assert (
        _run(
            script,
            data_dir,
            "--verbose",
            "0",
            "--epochs",
            "10",
            "--activation",
            "relu",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
        )
        == 0
    )
    assert _accuracy(capsys.readouterr().out) >= 0.9


def test_runs_are_reproducible_with_a_seed(
    script: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for _ in range(2):
        assert _run(script, data_dir, "--verbose", "0", "--seed", "7") == 0
        out = capsys.readouterr().out
        outputs.append(re.findall(r"Test loss: .*|First 10 .*", out))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3


def test_load_scales_pixels_to_unit_interval(script: ModuleType, data_dir: Path) -> None:
    (x_train, y_train), (x_test, y_test) = script.load("mnist", str(data_dir))
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert x_train.shape == (N_TRAIN, 28, 28) and x_test.shape == (N_TEST, 28, 28)
    assert x_train.flags.c_contiguous
    assert x_train.min() >= 0.0 and x_train.max() == 1.0
    raw = mnist_data.load_data(path=data_dir)[0][0]
    np.testing.assert_array_equal(x_train, raw.astype(np.float32) / np.float32(255))
    assert y_train.shape == (N_TRAIN,) and y_test.shape == (N_TEST,)


def test_hidden_flag_builds_a_deeper_model(
    script: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = script.parse_args(["--hidden", "32", "16", "--activation", "tanh"])
    model = script.build_model(args.hidden, args.activation)
    assert len(model.layers) == 4  # Flatten, Dense(32), Dense(16), Dense(10)
    dense = [layer for layer in model.layers if isinstance(layer, fm.layers.Dense)]
    assert [layer.units for layer in dense] == [32, 16, 10]
    assert [layer.activation for layer in dense] == ["tanh", "tanh", "softmax"]
    assert model.count_params() == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10

    assert _run(script, data_dir, "--hidden", "32", "16", "--verbose", "1") == 0
    out = capsys.readouterr().out
    assert "784-32-16-10" in out
    assert "(None, 32)" in out and "(None, 16)" in out and "(None, 10)" in out  # the summary


def test_confusion_matrix(script: ModuleType) -> None:
    plotting = importlib.import_module("_mnist_plot")  # beside the script, which put it on sys.path
    actual = np.array([0, 0, 1, 2, 2, 2], dtype=np.uint8)
    predicted = np.array([0, 1, 1, 2, 0, 2])
    matrix = plotting.confusion_matrix(actual, predicted, num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_plot_writes_a_png(
    script: ModuleType, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "mnist.png"
    assert _run(script, data_dir, "--verbose", "2", "--plot", str(target)) == 0
    out = capsys.readouterr().out
    assert "val_accuracy" in out  # the test set served as validation data
    assert f"Plot written to {target}" in out
    content = target.read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 10_000


def test_plot_without_matplotlib_fails_before_training(
    script: ModuleType,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    target = tmp_path / "mnist.png"
    with pytest.raises(SystemExit, match=r"needs matplotlib.*pip install"):
        _run(script, data_dir, "--plot", str(target))
    assert "Epoch" not in capsys.readouterr().out
    assert not target.exists()


@pytest.mark.skipif(
    not hasattr(fm, "set_num_threads"), reason="fastmlp.set_num_threads not there yet"
)
def test_threads_flag(
    script: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = []
    for threads in ("1", "2"):
        assert _run(script, data_dir, "--verbose", "0", "--threads", threads) == 0
        results.append(re.findall(r"Test loss: .*|First 10 .*", capsys.readouterr().out))
    assert results[0] == results[1]  # the result does not depend on the thread count


def test_save_flag(script: ModuleType, data_dir: Path, tmp_path: Path) -> None:
    """--save writes a model file that load_model reads back, with the trained network."""
    target = tmp_path / "model.fastmlp"
    assert _run(script, data_dir, "--verbose", "0", "--save", str(target)) == 0
    loaded = fm.models.load_model(target)
    assert loaded.count_params() == 784 * 100 + 100 + 100 * 10 + 10


def test_missing_data_is_an_error_not_a_traceback(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(script, tmp_path) == 1
    err = capsys.readouterr().err
    assert "could not load mnist" in err and "train-images-idx3-ubyte" in err


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch-size", "0"],
        ["--batch-size", "x"],
        ["--dataset", "foo"],
        ["--epochs", "0"],
        ["--epochs", "-1"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--hidden"],
        ["--hidden", "100", "0"],
        ["--activation", "softplus"],
        ["--optimizer", "lbfgs"],
        ["--threads", "0"],
        ["--seed", "-1"],
        ["--verbose", "3"],
        ["--no-such-flag"],
    ],
    ids=lambda flags: " ".join(flags),
)
def test_invalid_flags_exit_with_an_argparse_error(
    script: ModuleType, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        script.main(flags)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
