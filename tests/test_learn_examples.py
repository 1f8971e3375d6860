"""The teaching scripts of examples/learn, each run once in its own interpreter.

Each script's printed numbers are checked against values from elsewhere: the teaching texts'
hand arithmetic, ``math``, ``numpy.linalg`` (least squares, eigenvalues) or a few lines of NumPy
here. matplotlib is optional (the ``plot`` extra, not the ``test`` one): without it the scripts
still run and print, and only the PNG checks are skipped.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import fastmlp as fm
import numpy as np
import pytest
from fake_mnist import write_fake_mnist

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "learn"


def _has_matplotlib() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


HAS_MATPLOTLIB = _has_matplotlib()
TIMEOUT_S = 120  # each takes a second or two; the margin is for a loaded CI machine
NUMBER = r"(-?[0-9.]+(?:e[-+][0-9]+)?|inf)"
PNGS = {
    "sales_forecast": "sales_forecast.png",
    "and_gate": "and_gate.png",
    "matrix_form": "matrix_form.png",
    "compare_optimizers": "compare_optimizers.png",
    "linear_regression": "linear_regression.png",
    "learning_rate_search": "learning_rate_search.png",
}


def run(script: str, out: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{script}.py"), "--out", str(out), *args],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """Every script's printed output and the folder its PNG went to, each run once."""
    runs = {}
    for script in PNGS:
        out = tmp_path_factory.mktemp(script)
        runs[script] = (run(script, out), out)
    return runs


def numbers(pattern: str, text: str) -> list[float]:
    """The numbers a pattern captures (NUMBER groups) in the first line that matches it."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return [float(group) for group in match.groups()]


def load(script: str) -> ModuleType:
    """A script imported as a module, for its data (the data is not what is tested)."""
    spec = importlib.util.spec_from_file_location(f"learn_{script}", EXAMPLES / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sales_forecast(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["sales_forecast"]
    # The text: predictions 2*20 - 2*5 = 30 and 2*30 - 2*4 = 52; MSE (25^2 + 34^2) / 2 = 890.5.
    assert numbers(rf"predictions \[{NUMBER} +{NUMBER}\], loss {NUMBER}", text) == [30, 52, 890.5]
    # dJ/dw = X^T e = (20*25 + 30*34, 5*25 + 4*34) = (1520, 261); w - 0.001 * that = (0.48, -2.261).
    hand = numbers(rf"by hand: +gradient \[{NUMBER} +{NUMBER}\].*w = \[ *{NUMBER} +{NUMBER} *\]", text)
    np.testing.assert_allclose(hand, [1520, 261, 0.48, -2.261], rtol=1e-9)
    core = numbers(rf"fastmlp: +gradient \[{NUMBER} +{NUMBER}\].*w = \[ *{NUMBER} +{NUMBER} *\]", text)
    np.testing.assert_allclose(core, [1520, 261, 0.48, -2.261], rtol=1e-5)
    # 20 w1 + 5 w2 = 5 and 30 w1 + 4 w2 = 18 give w = (1, -3); the held-out months then give 28
    # and 21 against 24 and 18: mae (4 + 3) / 2 = 3.5.
    np.testing.assert_allclose(numbers(rf"w = \({NUMBER}, {NUMBER}\)", text), [1, -3], atol=1e-3)
    held_out = numbers(rf"held out: predictions \({NUMBER}, {NUMBER}\).*mae {NUMBER}", text)
    np.testing.assert_allclose(held_out, [28, 21, 3.5], atol=1e-2)


def test_and_gate(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["and_gate"]
    p = 1 / (1 + math.exp(-0.1))  # sigmoid(0.1)
    new_p = 1 / (1 + math.exp(-(0.1 - 2 * p)))  # w1 and b both move by -p
    text_p = 1 / (1 + math.exp(-(0.1 - 2 * p * (1 - p))))  # the text's step with sigmoid'(0.1)
    by_hand = numbers(rf"z = {NUMBER}, p = sigmoid\(z\) = {NUMBER}, loss = {NUMBER}", text)
    np.testing.assert_allclose(by_hand, [0.1, 0.524979, 0.744397], atol=5e-7)
    assert numbers(rf"sigmoid'\(z\) = p\(1 - p\) = {NUMBER}", text)[0] == pytest.approx(0.249, abs=5e-4)
    assert numbers(rf"dL/dp = 1/\(1 - p\) = {NUMBER}", text)[0] == pytest.approx(1 / (1 - p), abs=1e-6)
    assert numbers(rf"dL/dz = .* = {NUMBER} = p - y", text)[0] == pytest.approx(0.525, abs=5e-4)
    gradients = re.findall(rf"dL/dw = \({NUMBER}, {NUMBER}\), dL/db = {NUMBER}", text)
    assert len(gradients) == 3  # by hand, by fastmlp, by the reference
    for gradient in gradients:
        np.testing.assert_allclose([float(v) for v in gradient], [p, 0, p], atol=1e-6)
    steps = re.findall(rf"after one step \(lr 1\): w = \({NUMBER}, {NUMBER}\), b = {NUMBER}, p = {NUMBER}", text)
    assert len(steps) == 2  # by hand and by fastmlp
    for step in steps:
        np.testing.assert_allclose([float(v) for v in step], [0.1 - p, -0.12, -p, new_p], atol=1e-6)
    assert numbers(rf"with 0.249, .* p = {NUMBER}", text)[0] == pytest.approx(0.402, abs=5e-4)
    assert text_p == pytest.approx(0.402, abs=5e-4)


def test_matrix_form(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["matrix_form"]
    x, y, (w1, b1, w2, b2) = load("matrix_form").make_data()
    y_hat = 1 / (1 + np.exp(-(x @ w1 + b1))) @ w2 + b2
    assert numbers(rf"network 3-4-2: loss {NUMBER}", text)[0] == pytest.approx(np.mean((y_hat - y) ** 2), abs=1e-6)
    assert numbers(rf"max \|hand - fastmlp\| of dJ/dW, dJ/db: {NUMBER}", text)[0] < 1e-12
    assert numbers(rf"max \|hand - fastmlp float64\| of the gradients: {NUMBER}", text)[0] < 1e-12
    assert numbers(rf"max \|hand - reference\| of the gradients: +{NUMBER}", text)[0] < 1e-12
    assert numbers(rf"max \|hand - fastmlp float64\| of the weights: {NUMBER}", text)[0] < 1e-10
    assert numbers(rf"max \|hand - fastmlp float32\| of the weights: {NUMBER}", text)[0] < 1e-4


def test_compare_optimizers(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["compare_optimizers"]
    rows = dict(
        (name.strip(), (float(loss), float(accuracy)))
        for name, loss, _epochs, accuracy, _seconds in re.findall(
            rf"^ *([A-Za-z][^:\n]*?) +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$", text, re.M
        )
    )
    expected = ["gradient descent", "SGD (batch 1)", "minibatch (16)", "momentum 0.9", "Adagrad", "Adam"]
    expected += [name for name, cls in (("Newton", "Newton"), ("conjugate gradient", "ConjugateGradient"), ("L-BFGS", "LBFGS"))
                 if hasattr(fm.optimizers, cls)]
    assert sorted(rows) == sorted(expected), text
    for name, (loss, accuracy) in rows.items():
        # Better than the constant guess 1/2 on two balanced classes (loss log 2, accuracy 1/2).
        assert loss < math.log(2) and accuracy > 0.8, name
    assert max(accuracy for _, accuracy in rows.values()) > 0.95


def test_linear_regression(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["linear_regression"]
    height, weight = load("linear_regression").make_data()
    x = np.column_stack([height, np.ones(len(height))])
    (a, b), *_ = np.linalg.lstsq(x, weight, rcond=None)
    mse = np.mean((weight - x @ (a, b)) ** 2)
    ols = numbers(rf"least squares: +weight = {NUMBER} \* height \+?{NUMBER}, MSE {NUMBER}", text)
    np.testing.assert_allclose(ols, [a, b, mse], atol=1e-3)
    gd = numbers(rf"gradient descent: weight = {NUMBER} \* height \+?{NUMBER}, MSE {NUMBER}", text)
    np.testing.assert_allclose(gd, [a, b, mse], rtol=1e-3)  # float32, 150 steps
    if hasattr(fm.optimizers, "LeastSquares"):
        exact = numbers(rf"LeastSquares\(\): +weight = {NUMBER} \* height \+?{NUMBER}", text)
        np.testing.assert_allclose(exact, [a, b], rtol=1e-3)


def test_learning_rate_search(outputs: dict[str, tuple[str, Path]]) -> None:
    text, _ = outputs["learning_rate_search"]
    x, _ = load("learning_rate_search").make_data()
    x1 = np.column_stack([x, np.ones(len(x))])
    edge = 2 / np.linalg.eigvalsh(2 / len(x) * x1.T @ x1).max()  # 2 / lambda_max of the Hessian
    assert numbers(rf"converges for learning rates below {NUMBER}", text)[0] == pytest.approx(edge, abs=1e-4)
    if hasattr(fm.Sequential, "compute_hessian"):
        core = numbers(rf"largest eigenvalue of model.compute_hessian\(x, y\): {NUMBER}", text)[0]
        assert core == pytest.approx(2 / edge, abs=1e-4)
    start = numbers(rf"start loss {NUMBER}", text)[0]
    trials = [(float(lr), float(loss)) for lr, loss in re.findall(rf"^  +{NUMBER}  {NUMBER}$", text, re.M)]
    assert len(trials) == 15 + 10  # the grid and the random trials
    for lr, loss in trials:
        if lr < 0.9 * edge:
            assert loss < start, lr  # |1 - eta lambda| < 1 in every direction: the loss falls
        if lr > 1.1 * edge:
            assert loss > start, lr  # |1 - eta lambda_max| > 1.2: it grows every step
    for best in re.findall(rf"best: learning rate {NUMBER}", text):
        assert float(best) < edge


@pytest.mark.parametrize("script", sorted(PNGS))
def test_writes_its_png(outputs: dict[str, tuple[str, Path]], script: str) -> None:
    text, out = outputs[script]
    if not HAS_MATPLOTLIB:
        assert "skipped the plot" in text
        pytest.skip("matplotlib is not installed (pip install '.[plot]'): the script ran and printed only")
    path = out / PNGS[script]
    assert f"Plot written to {path}" in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_runs_and_says_so_without_matplotlib(tmp_path: Path) -> None:
    hidden = tmp_path / "hide"
    (hidden / "matplotlib").mkdir(parents=True)
    (hidden / "matplotlib" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    text = run("and_gate", tmp_path / "out", env=env)
    assert "p = sigmoid(z) = 0.524979" in text
    assert "matplotlib is not installed: skipped the plot" in text
    assert not (tmp_path / "out").exists()


def test_mnist_wrapper_runs_the_main_example(tmp_path: Path) -> None:
    data = write_fake_mnist(tmp_path / "data")
    text = run("mnist_784_100_10", tmp_path / "out", "--data-dir", str(data), "--epochs", "1", "--verbose", "0")
    assert "784-100-10" in text or "Dense" in text or "test accuracy" in text
    assert re.search(r"test accuracy: [0-9.]+", text), text
    if HAS_MATPLOTLIB:
        assert (tmp_path / "out" / "mnist.png").read_bytes()[:4] == b"\x89PNG"


def test_learn_md_quotes_the_code_it_points_to() -> None:
    """docs/learn.md's "`file.py:function`: `excerpt`" cells: the excerpt is in that function."""
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "learn.md").read_text(encoding="utf-8")
    cited = re.findall(r"`([\w/]+\.py):(\w+)`: ([^;|]*)", doc)
    assert len(cited) > 20
    for file, function, cell in cited:
        path = root / file if "/" in file else (root / "python" / "fastmlp" / file if file == "reference.py" else EXAMPLES / file)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        [node] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
        source = ast.get_source_segment(path.read_text(encoding="utf-8"), node)
        assert source is not None
        flat = " ".join(source.split())  # a line break and its indent read as one space
        for excerpt in re.findall(r"`([^`]+)`", cell):
            assert " ".join(excerpt.split()) in flat, f"{excerpt!r} is not in {file}:{function}"
