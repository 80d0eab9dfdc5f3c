"""The README's Python snippets run as written (a guide whose examples fail is worse than none).

Every ```python block is executed in a fresh namespace inside a temporary directory, except the
interop example, which needs a `.keras` file and a torch module to exist (its functions are tested
in tests/test_interop_*.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
NEEDS_PEER_FILES = ("from_torch(", "from_keras(")


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = BLOCKS[index]
    if any(marker in code for marker in NEEDS_PEER_FILES):
        pytest.skip("needs a Keras file and a torch module; covered by tests/test_interop_*.py")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})
