"""The documentation names only commands and options that exist, and documents every command.

Every `sfx-index ...` / `sfx-search ...` invocation in the README and docs/ (in code spans and
code blocks) is walked down the real click command tree: each subcommand must exist and each
`--option` must belong to that command or a group above it. The reverse: every command and
subcommand of both programs appears in the docs. docs/design.md is left out: it is the
contract, which names commands still being built.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from indexer.cli import main as index_main
from search.cli import main as search_main

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = {"sfx-index": index_main, "sfx-search": search_main}
SKIP = {"design.md"}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in SKIP)]


def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks (backslash continuations joined) and inline code spans."""
    out, block = [], None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            block = [] if block is None else out.extend(_join(block)) or None
            continue
        if block is not None:
            block.append(line)
        else:
            out += re.findall(r"`([^`]+)`", line.replace("\\|", "|"))
    return out


def _join(lines: list[str]) -> list[str]:
    joined, cur = [], ""
    for ln in lines:
        if ln.rstrip().endswith("\\"):
            cur += ln.rstrip()[:-1] + " "
        else:
            joined.append(cur + ln)
            cur = ""
    return joined + ([cur] if cur else [])


def invocations() -> list[tuple[str, str, list[str]]]:
    """(file, program, tokens after the program name) for every invocation in the docs."""
    found = []
    for f in doc_files():
        for line in code_lines(f.read_text(encoding="utf-8")):
            line = re.split(r"\s#\s", line)[0]  # a shell comment is prose
            for m in re.finditer(r"(?:^|[\s(|;&$])(sfx-index|sfx-search)\b(?!\.)", line):
                rest = line[m.end():].split("#", 1)[0]
                rest = re.split(r"\s[|;&>]\s|\s{3,}", rest)[0]  # a pipe, or a column of comments
                tokens = [t.strip("[](){},") for t in rest.split()]
                found.append((f.name, m.group(1), [t for t in tokens if t]))
    return found


def _command_of(program: str, tokens: list[str]) -> tuple[list[click.Command], list[str]]:
    """The chain of commands the tokens reach, and the option names they use."""
    chain = [PROGRAMS[program]]
    options = []
    words_done = False
    for tok in tokens:
        for part in tok.split("|"):
            if part.startswith("-"):
                options.append(part.split("=", 1)[0])
                words_done = True
            elif not words_done and isinstance(chain[-1], click.Group) and re.fullmatch(r"[a-z][a-z0-9-]*", part):
                sub = chain[-1].commands.get(part)
                if sub is None and chain[-1] is search_main and len(chain) == 1:
                    chain.append(search_main.commands["query"])  # the default command: the query text
                    words_done = True
                elif sub is None:
                    raise AssertionError(f"{program} {' '.join(c.name for c in chain[1:])} has no command '{part}'")
                else:
                    chain.append(sub)
            else:
                if chain[-1] is search_main and len(chain) == 1:
                    chain.append(search_main.commands["query"])
                words_done = True
    return chain, options


def _names(cmd: click.Command) -> set[str]:
    names = {"-h", "--help"}
    for p in cmd.params:
        if isinstance(p, click.Option):
            names.update(p.opts)
            names.update(p.secondary_opts)
    return names


def test_every_documented_command_and_option_exists():
    seen = invocations()
    assert len(seen) > 40, "the docs name the commands"
    problems = []
    for fname, program, tokens in seen:
        try:
            chain, options = _command_of(program, tokens)
        except AssertionError as exc:
            problems.append(f"{fname}: {exc}")
            continue
        known = set().union(*(_names(c) for c in chain)) | {"--version"}
        for opt in options:
            if opt.startswith("--") and opt not in known:
                problems.append(f"{fname}: `{program} {' '.join(tokens)}`: no option {opt}")
            if re.fullmatch(r"-[a-zA-Z]", opt) and opt not in known:
                problems.append(f"{fname}: `{program} {' '.join(tokens)}`: no option {opt}")
    assert not problems, "\n".join(problems)


def _all_commands(group: click.Group, prefix: str):
    for name, cmd in group.commands.items():
        yield prefix, name, cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, f"{prefix} {name}")


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_command_is_documented(program):
    reached = set()
    for _, prog, tokens in invocations():
        if prog != program:
            continue
        try:
            chain, _ = _command_of(prog, tokens)
        except AssertionError:
            continue
        reached.update(id(c) for c in chain)
        # `model pull|list|remove` names several subcommands at once
        if tokens and "|" in tokens[-1] and isinstance(chain[-1], click.Group):
            reached.update(id(chain[-1].commands[w]) for w in tokens[-1].split("|") if w in chain[-1].commands)
        for tok in tokens:
            if "|" in tok and isinstance(chain[-1], click.Group):
                reached.update(id(chain[-1].commands[w]) for w in tok.split("|") if w in chain[-1].commands)
    missing = [f"{prefix} {name}" for prefix, name, cmd in _all_commands(PROGRAMS[program], program)
               if id(cmd) not in reached]
    assert not missing, f"commands the docs never show: {missing}"


def test_the_checker_catches_what_does_not_exist():
    with pytest.raises(AssertionError):
        _command_of("sfx-index", ["no-such-command"])
    chain, opts = _command_of("sfx-search", ['"rain"', "--no-such-option"])
    assert chain[-1].name == "query" and "--no-such-option" not in set().union(*(_names(c) for c in chain))
    chain, opts = _command_of("sfx-search", ["tag", "export", "--csv", "tags.csv"])
    assert [c.name for c in chain[1:]] == ["tag", "export"] and opts == ["--csv"]
