"""The README's quickstart runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_runs(capsys):
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace = {}
    for code in blocks:  # the second block continues the first one's session
        exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "d height / d initial velocity" in out and "nan" not in out.lower()
    for estimator in ("analytic", "truncated", "es", "hybrid", "auto"):
        assert f"\n{estimator} " in out


def test_readme_reinforcement_learning_example_runs(capsys):
    import pytest

    pytest.importorskip("gymnasium")
    section = README.read_text().split("## Reinforcement learning", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(README), "exec"), {})
    assert "'return'" in capsys.readouterr().out
