"""The README's "Use from Python" example is what a researcher copies first: it must run as written."""

import re

from helpers import REPO_ROOT


def test_use_from_python_example_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Use from Python", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the section has no Python example"
    for block in blocks:
        exec(compile(block, "README.md: Use from Python", "exec"), {})
