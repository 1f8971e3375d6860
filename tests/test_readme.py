"""The README's quickstart runs as written (on a tiny stand-in for MNIST found through
$FASTMLP_DATA, so no network is needed), and the README stays a front page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fake_mnist import write_fake_mnist

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block under '## Quickstart'"
    return match.group(1)


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "data" / "mnist")
    environment = {**os.environ, "FASTMLP_DATA": str(tmp_path / "data")}
    code = quickstart() + "\nprint('accuracy', accuracy, probabilities.shape, len(grads), type(same).__name__)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1].split()
    assert last[0] == "accuracy" and 0.0 <= float(last[1]) <= 1.0
    assert " ".join(last[2:]) == "(50, 10) 2 Sequential"
    assert (tmp_path / "mnist.fastmlp").is_file()


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 170, f"README.md has {len(lines)} lines: move detail to docs/"
    for link in re.findall(r"\]\((docs/[^)#]+)", README.read_text()):
        assert (README.parent / link).is_file(), f"README links to missing {link}"
