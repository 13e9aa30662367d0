"""The README runs as written, and every link in it and in BENCHMARKS.md resolves.

What is checked:
- Every ```python block with `>>>` prompts runs, statement by statement, in a fresh Python process
  (one per block, in a temporary folder that holds a link to models/), and where the README shows an
  expected output under a statement, the printed result must equal it.
  Two documented substitutions keep this under a minute on 2 cores, and every line still runs:
  `data.load_mnist` returns a slice (512 training, 256 validation and 256 test images of the real
  MNIST), and `epochs=<n>` in a statement becomes `epochs=1`.
- Every `python something.py ...` command, in a ```bash block or in inline code, of README.md and
  BENCHMARKS.md, names a file that exists and passes only flags (and choices) that the script's
  `--help` lists. The short ones in CHEAP_COMMANDS also run; the long ones (training for minutes,
  `make run`) are only checked this way. `make <target>` must name a Makefile target.
- Every relative link and image resolves to a file, every `#anchor` to a heading, and every link of
  the form [`name`](file.py#L123) to a `def name` or `class name` in that file, at that line, so
  that the link opens the file at the function. When code above a function moves it, this test fails;
  `python tests/test_readme.py --fix-anchors` rewrites every such anchor in README.md and
  BENCHMARKS.md to the current line (a top-level definition first, else the first method of that name).
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "BENCHMARKS.md"]

# Subprocess environment: quiet TensorFlow, and one BLAS/OpenMP thread, so that a loaded 2-core machine
# does not turn seconds into minutes (threads waiting for busy cores); nothing here measures speed.
ENVIRONMENT = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1")

# Commands that finish in seconds: they run for real (from the repository root). `cnn_from_scratch.py --quick`
# is run, and its accuracy checked, by tests/test_cnn_from_scratch.py: not twice.
CHEAP_COMMANDS = {
    "explorer.py --quick",
}


# --- Reading the Markdown ---

def code_blocks(path, language):
    """(first line number, body) of every fenced block of the given language."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        if match.group(1) == language:
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return blocks


def repl_statements(body):
    """A `>>>` block -> [(statement source, expected output or None)], in order."""
    statements = []
    for line in body.splitlines():
        if line.startswith(">>> "):
            statements.append([line[4:], []])
        elif line.startswith("... ") and statements:
            statements[-1][0] += "\n" + line[4:]
        elif line.strip() and statements:
            statements[-1][1].append(line.strip())
    return [(source, "\n".join(expected) if expected else None) for source, expected in statements]


def python_blocks():
    return [pytest.param(path, line, body, id=f"{path.name}:{line}")
            for path in [README] for line, body in code_blocks(path, "python") if ">>>" in body]


def strip_comment(line):
    """Drop a trailing shell comment (a # after whitespace, outside quotes)."""
    quote = None
    for index, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def shell_commands():
    """Every shell command in README.md and BENCHMARKS.md: bash blocks, and inline code that starts
    with python or make. Returns [(where, command)]."""
    commands = []
    for path in DOCUMENTS:
        for line_number, body in code_blocks(path, "bash"):
            for offset, line in enumerate(body.splitlines()):
                for part in strip_comment(line).split("&&"):
                    if part.strip():
                        commands.append((f"{path.name}:{line_number + offset + 1}", part.strip()))
        text = path.read_text(encoding="utf-8")
        prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        for span in re.findall(r"`([^`\n]+)`", prose):
            for part in span.split("&&"):
                part = part.strip()
                if re.match(r"^(\S*/)?python(3(\.\d+)?)? \S+\.py\b|^make \w", part):
                    commands.append((f"{path.name} (inline)", part))
    return commands


def python_script_commands():
    """[(where, script path relative to the root, [arguments])] for every `python X.py ...` command."""
    found = []
    for where, command in shell_commands():
        words = shlex.split(command)
        while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value python ...
            words = words[1:]
        if len(words) >= 2 and re.search(r"(^|/)python(3(\.\d+)?)?$", words[0]) and words[1].endswith(".py"):
            found.append((where, words[1], words[2:]))
    return found


# --- Snippets ---

RUNNER = textwrap.dedent('''
    import json, re, sys
    sys.path.insert(0, sys.argv[1])
    import data

    _load_mnist = data.load_mnist

    def small_mnist(*args, **kwargs):
        """The README's substitution: a slice of the real MNIST, so that every line runs in seconds."""
        full = _load_mnist(*args, **kwargs)
        return data.Dataset(full.x_train[:512], full.y_train[:512], full.x_val[:256], full.y_val[:256],
                            full.x_test[:256], full.y_test[:256])

    data.load_mnist = small_mnist
    namespace = {"__name__": "__readme__"}
    for number, (source, expected) in enumerate(json.loads(sys.argv[2])):
        source = re.sub(r"\\bepochs=\\d+", "epochs=1", source)
        print(f"@@@ statement {number}", flush=True)
        exec(compile(source, f"<README statement {number}>", "single"), namespace)
    print("@@@ end", flush=True)
''')


def run_block(body, cwd, timeout=120):
    import json
    statements = repl_statements(body)
    result = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT), json.dumps(statements)], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout, env=ENVIRONMENT)
    return statements, result


@pytest.mark.parametrize("path, line, body", python_blocks())
def test_python_block_runs(path, line, body, tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models")
    statements, result = run_block(body, tmp_path)
    assert result.returncode == 0 and "@@@ end" in result.stdout, (
        f"the >>> block at {path.name}:{line} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    outputs = result.stdout.split("@@@ statement ")[1:]
    for (source, expected), output in zip(statements, outputs):
        printed = output.split("\n", 1)[1].replace("@@@ end", "").strip() if "\n" in output else ""
        if expected is not None:
            assert printed == expected, f"{path.name}:{line}: `{source}` printed {printed!r}, the README shows {expected!r}"


def test_every_python_block_is_found():
    blocks = python_blocks()
    assert len(blocks) >= 5, "the README's >>> blocks were not found"
    for _, line, body in (block.values for block in blocks):
        assert all(source.strip() for source, _ in repl_statements(body)), f"empty statement in the block at line {line}"


# --- Commands ---

HELP_RUNNER = textwrap.dedent('''
    import contextlib, io, json, runpy, sys
    root, scripts, texts = sys.argv[1], json.loads(sys.argv[2]), {}
    sys.path.insert(0, root)
    for script in scripts:
        sys.argv, output = [script, "--help"], io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                runpy.run_path(f"{root}/{script}", run_name="__main__")
            texts[script] = None  # --help returned without exiting: not argparse
        except SystemExit as exit:
            texts[script] = output.getvalue() if exit.code in (0, None) else None
        except Exception as error:  # --help itself crashed
            print(f"`python {script} --help` failed: {error!r}", file=sys.stderr)
            texts[script] = None
    print(json.dumps(texts))
''')


@pytest.fixture(scope="module")
def help_texts():
    """{script: its --help output, or None when --help fails}. All scripts run in one process, one after
    the other, so that PyTorch and TensorFlow are imported once (runpy, as `python script --help` would)."""
    import json
    scripts = sorted({script for _, script, _ in python_script_commands() if (ROOT / script).is_file()})
    result = subprocess.run([sys.executable, "-c", HELP_RUNNER, str(ROOT), json.dumps(scripts)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=ENVIRONMENT)
    assert result.returncode == 0, f"the --help runner failed:\n{result.stderr[-3000:]}"
    print(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_commands_name_existing_files_and_accepted_flags(help_texts):
    commands = python_script_commands()
    assert len(commands) >= 10, "the documents' python commands were not found"
    problems = []
    for where, script, arguments in commands:
        if not (ROOT / script).is_file():
            problems.append(f"{where}: {script} does not exist")
            continue
        text = help_texts[script]
        if text is None:
            problems.append(f"{where}: `python {script} --help` fails (the captured output says why)")
            continue
        accepted = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text))
        choices = {flag: set(values.split(",")) for flag, values in re.findall(r"(--[a-z][\w-]*) \{([^}]*)\}", text)}
        for index, argument in enumerate(arguments):
            flag = argument.split("=", 1)[0]
            if not flag.startswith("--"):
                continue
            if flag not in accepted:
                problems.append(f"{where}: `python {script}` does not accept {flag}")
            elif flag in choices and index + 1 < len(arguments) and arguments[index + 1] not in choices[flag]:
                problems.append(f"{where}: {flag} {arguments[index + 1]} is not one of {sorted(choices[flag])}")
    assert not problems, "\n".join(problems)


def test_pytest_and_make_commands_resolve():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    for where, command in shell_commands():
        words = shlex.split(command)
        if words[:1] == ["make"]:
            assert words[1] in targets, f"{where}: `{command}`: no such Makefile target"
        if "pytest" in words:
            for word in words[words.index("pytest") + 1:]:
                if not word.startswith("-"):
                    assert (ROOT / word.split("::")[0]).exists(), f"{where}: `{command}`: no such test file"


@pytest.mark.parametrize("command", sorted(CHEAP_COMMANDS))
def test_cheap_command_runs(command):
    assert any(f"{script} {' '.join(arguments)}".strip() == command for _, script, arguments in python_script_commands()), (
        f"`python {command}` is no longer in the README; update CHEAP_COMMANDS")
    result = subprocess.run([sys.executable, *command.split()], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=ENVIRONMENT)
    assert result.returncode == 0, f"`python {command}` failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


# --- Links ---

def github_anchor(heading):
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def links(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"!?\[([^\]]*)\]\(([^)\s]+)\)", text)


FUNCTION_LINK = re.compile(r"\[`([A-Za-z_][\w.]*)`\]\(([\w./-]+\.py)(?:#L(\d+))?\)")  # [`name`](file.py#L123)
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def definition_line(path, symbol):
    """1-based line of `def symbol` or `class symbol` in the file: a top-level one first, else the first
    indented one (a method); None when there is none."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for pattern in (rf"(def|class)\s+{re.escape(symbol)}\b", rf"\s+(def|class)\s+{re.escape(symbol)}\b"):
        for number, line in enumerate(lines, start=1):
            if re.match(pattern, line):
                return number
    return None


def fix_anchors(text, folder):
    """The text with every function link's #L anchor set to its definition's line, outside code blocks.
    Returns (new text, ["old link -> new link", ...]); links to a missing definition are left as they are."""
    changes = []

    def replace(match):
        name, file_name, _ = match.groups()
        if name.endswith(".py") or not (folder / file_name).is_file():
            return match.group(0)
        line = definition_line(folder / file_name, name.split(".")[-1])
        new = match.group(0) if line is None else f"[`{name}`]({file_name}#L{line})"
        if new != match.group(0):
            changes.append(f"{match.group(0)} -> {new}")
        return new

    pieces, position = [], 0
    for fence in FENCE.finditer(text):
        pieces += [FUNCTION_LINK.sub(replace, text[position:fence.start()]), fence.group(0)]
        position = fence.end()
    pieces.append(FUNCTION_LINK.sub(replace, text[position:]))
    return "".join(pieces), changes


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_function_links_open_the_file_at_the_function(path):
    _, changes = fix_anchors(path.read_text(encoding="utf-8"), path.parent)
    assert not changes, (f"{path.name}: {len(changes)} function link(s) do not land on their definition; run "
                         f"`python tests/test_readme.py --fix-anchors` to rewrite them:\n" + "\n".join(changes[:20]))


def test_fix_anchors_adds_and_corrects_line_anchors():
    line = definition_line(ROOT / "cnn_from_scratch.py", "conv2d_forward_naive")
    assert (ROOT / "cnn_from_scratch.py").read_text().splitlines()[line - 1].startswith("def conv2d_forward_naive(")
    text = ("[`conv2d_forward_naive`](cnn_from_scratch.py) and [`CNN`](cnn_from_scratch.py#L1), "
            "[`cnn_pytorch.py`](cnn_pytorch.py), [`not_there`](cnn_from_scratch.py)\n"
            "```text\n[`conv2d_forward_naive`](cnn_from_scratch.py)\n```\n")
    fixed, changes = fix_anchors(text, ROOT)
    cnn_line = definition_line(ROOT / "cnn_from_scratch.py", "CNN")
    assert fixed == (f"[`conv2d_forward_naive`](cnn_from_scratch.py#L{line}) and "
                     f"[`CNN`](cnn_from_scratch.py#L{cnn_line}), "
                     "[`cnn_pytorch.py`](cnn_pytorch.py), [`not_there`](cnn_from_scratch.py)\n"
                     "```text\n[`conv2d_forward_naive`](cnn_from_scratch.py)\n```\n")  # code blocks stay as they are
    assert len(changes) == 2
    source = (ROOT / "cnn_from_scratch.py").read_text().splitlines()  # CNN.fit comes first, the top-level fit wins
    assert source[definition_line(ROOT / "cnn_from_scratch.py", "fit") - 1].startswith("def fit(model")


@pytest.mark.parametrize("path", [*DOCUMENTS, ROOT / "RESULTS.md"], ids=lambda path: path.name)
def test_links_and_images_resolve(path):  # RESULTS.md too: report.py writes its links
    text = path.read_text(encoding="utf-8")
    anchors = {github_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    problems = []
    for label, target in links(path):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        if not file_part:
            if anchor not in anchors:
                problems.append(f"#{anchor}: no such heading")
            continue
        resolved = (path.parent / file_part).resolve()
        if not resolved.exists():
            problems.append(f"{target}: no such file")
            continue
        name = re.fullmatch(r"`([A-Za-z_][\w.]*)`", label)
        if name and resolved.suffix == ".py" and not name.group(1).endswith(".py"):
            symbol = name.group(1).split(".")[-1]
            source = resolved.read_text(encoding="utf-8")
            if not re.search(rf"^\s*(def|class)\s+{re.escape(symbol)}\b", source, flags=re.MULTILINE):
                problems.append(f"[`{name.group(1)}`]({target}): no def or class {symbol} in {file_part}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_readme_links_the_licences():
    targets = {target for _, target in links(README)}
    assert {"LICENSE", "data/README.md", "BENCHMARKS.md", "RESULTS.md"} <= targets


def main():
    parser = argparse.ArgumentParser(description="Run with pytest; this entry point only rewrites link anchors.")
    parser.add_argument("--fix-anchors", action="store_true",
                        help="set every [`name`](file.py#L123) link in README.md and BENCHMARKS.md to the line of "
                             "its definition")
    args = parser.parse_args()
    if not args.fix_anchors:
        parser.error("nothing to do: pass --fix-anchors, or run the tests with python -m pytest tests/test_readme.py")
    sys.path.insert(0, str(ROOT))
    from cnn_from_scratch import atomic_save
    for path in DOCUMENTS:
        fixed, changes = fix_anchors(path.read_text(encoding="utf-8"), path.parent)
        if changes:
            atomic_save(path, lambda temporary: Path(temporary).write_text(fixed, encoding="utf-8"))
        print(f"{path.name}: {len(changes)} anchor(s) rewritten")


if __name__ == "__main__":
    main()
