"""docs/migrating.md stays true: its worked examples run as shown, and its tables name only flags that exist.

Every fenced ``bash`` block right after a ``<!-- example: NAME -->`` line is run, the blocks of one NAME in
order, in a fresh temporary folder: ``prunekit ...`` lines in-process (``> FILE`` redirects stdout),
``python - <<'EOF'`` scripts with ``exec``, ``cat > FILE <<'EOF'`` writes the file, ``cat FILE`` checks
it exists. Any other command fails the test, so the page cannot show a step that is not checked.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from prunekit.cli.main import build_parser, main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
TOOLS = ("mit", "tinynn", "oneflow", "pruning")


def examples(text: str) -> dict[str, list[str]]:
    """NAME -> the lines of its marked bash blocks, in order."""
    out: dict[str, list[str]] = {}
    for match in re.finditer(r"<!-- example: (\w+) -->\n```bash\n(.*?)\n```", text, re.S):
        out.setdefault(match.group(1), []).extend(match.group(2).splitlines())
    return out


def commands(lines: list[str]) -> list[tuple[str, object]]:
    """('heredoc', (command words, tag body)) or ('line', words) steps; continuation lines joined."""
    steps, i = [], 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        heredoc = re.match(r"(.*)<<'?(\w+)'?\s*$", line)
        if heredoc:
            body = []
            while lines[i] != heredoc.group(2):
                body.append(lines[i])
                i += 1
            i += 1
            steps.append(("heredoc", (shlex.split(heredoc.group(1)), "\n".join(body) + "\n")))
            continue
        words = shlex.split(line, comments=True)
        if words:
            steps.append(("line", words))
    return steps


def run_step(kind: str, step, folder: Path) -> None:
    """Run one step of an example in ``folder`` (the current directory)."""
    if kind == "heredoc":
        words, body = step
        if words == ["python", "-"]:
            exec(compile(body, "<docs/migrating.md>", "exec"), {"__name__": "__main__"})
        elif words[:2] == ["cat", ">"] and len(words) == 3:
            (folder / words[2]).write_text(body)
        else:
            pytest.fail(f"unsupported here-document command in docs/migrating.md: {' '.join(words)}")
        return
    words = step
    if words[0] == "cat" and len(words) == 2:
        assert (folder / words[1]).is_file(), words
        return
    if words[0] != "prunekit":
        pytest.fail(f"unsupported command in a worked example of docs/migrating.md: {' '.join(words)}")
    target = None
    if ">" in words:
        words, target = words[: words.index(">")], words[words.index(">") + 1]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*words[1:], "--quiet"])
    assert code == 0, f"{' '.join(words)} exited {code}: {err.getvalue()[-2000:]}"
    if target:
        (folder / target).write_text(out.getvalue())


PAGE_EXAMPLES = examples(PAGE.read_text())


def test_every_tool_has_a_worked_example():
    assert set(TOOLS) <= set(PAGE_EXAMPLES)


@pytest.mark.parametrize("name", TOOLS)
def test_worked_example_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    steps = commands(PAGE_EXAMPLES[name])
    assert any(kind == "line" and words[0] == "prunekit" for kind, words in steps)
    for kind, step in steps:
        run_step(kind, step, tmp_path)


def test_tables_name_only_existing_flags():
    """Every ``--flag`` in the prunekit column (the second) of the page's tables is a flag of a prunekit command."""
    flags = {f for p in build_parser()[1].values() for a in p._actions for f in a.option_strings}
    flags |= {"--" + f[5:] for f in flags if f.startswith("--no-")}
    named = set()
    for line in PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2 and not set(cells[1]) <= set("-: "):
            named |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", cells[1]))
    assert named and not named - flags, sorted(named - flags)


def test_the_harness_refuses_unknown_commands(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="unsupported command"):
        run_step("line", ["rm", "-rf", "runs"], tmp_path)
