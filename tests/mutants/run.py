"""Mutation testing: apply each hand-written bug of a mutant list and see whether the tests meant for it kill it.

    python tests/mutants/run.py [impl] [harness] [--only ID ...] [--list] [--timeout S] [--json PATH]
                                [--no-fallback]                                     (or `tox -e mutants`)

Two lists, reported separately: `impl` (`impl.yaml`, bugs of the PyTorch modules) and `harness`
(`harness/*.yaml`, one file per area: bugs of the code that turns a spec into a score). Each mutant is one
textual change of one file of its own tree (`find`, which must occur exactly once, becomes `replace`),
modelling a bug a careful implementer could make that keeps everything running. The repository's files
(tracked and untracked-not-ignored) are copied once into a temporary folder, and every run happens there:
this checkout is never touched.

For each mutant the focused tests (`files`, and `-k` when given) run with `pytest -x`; the mutant is killed
when they fail (or time out). A harness mutant also names the property meant to catch it: `by`, a regular
expression the first failing test's id must contain; a kill by another test is reported as *misattributed*.
A mutant the focused tests miss, and whose survival is not explained (`survives:`), runs against the whole
suite (unless `--no-fallback`): a kill there is misattributed too, since its own tests missed it. The
selections are first run unmutated: a mutant is only killed against green tests.

Exit 0 when every survivor is explained, no kill is misattributed and each list kills at least
`TARGET` of its mutants; 1 otherwise; 2 for a bad mutants file or option.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
LISTS = {"impl": "impl/", "harness": "harness/"}  # list name -> the tree its mutants change
TARGET = 0.95  # the least share of a list's mutants that must be killed
KEYS = {"id", "file", "find", "replace", "bug", "files", "k", "by", "survives"}
REQUIRED = {"id", "file", "find", "replace", "bug", "files"}
# the whole suite, for what the focused tests miss; never the list checks, which any mutated `find` fails
WHOLE_SUITE = ("tests", "--ignore=tests/test_mutants.py")
ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HYPOTHESIS_PROFILE": "ci",
    "OMP_NUM_THREADS": "2",
}


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    bug: str
    files: tuple[str, ...]
    k: str | None = None
    by: str | None = None
    survives: str | None = None
    list: str = "impl"

    @property
    def selection(self) -> tuple[str, ...]:
        return (*self.files, *(("-k", self.k) if self.k else ()))

    def meant_for(self, test: str) -> bool:
        """Whether `test` (a failing test's id) is the one this mutant names; any test when it names none."""
        return self.by is None or re.search(self.by, test) is not None


class BadMutants(Exception):
    pass


def list_files(name: str, folder: Path = HERE) -> list[Path]:
    """The files of list `name`: impl.yaml, or every harness/*.yaml in name order."""
    return [folder / "impl.yaml"] if name == "impl" else sorted((folder / name).glob("*.yaml"))


def load_mutants(path: Path, name: str = "impl") -> list[Mutant]:
    """The mutants of one file of list `name`, each checked: known keys, a file of the list's tree, `find`
    exactly once in it, a `by` that compiles (required for the harness list)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise BadMutants(f"{path}: expected a list of mutants")
    required = REQUIRED | ({"by"} if name == "harness" else set())
    mutants = []
    for number, entry in enumerate(entries, 1):
        where = f"{path.name}: mutant {number} ({entry.get('id', '?') if isinstance(entry, dict) else '?'})"
        if not isinstance(entry, dict) or required - set(entry) or set(entry) - KEYS:
            keys = sorted(set(entry) if isinstance(entry, dict) else [])
            raise BadMutants(f"{where}: keys {keys}; required {sorted(required)}, allowed {sorted(KEYS)}")
        if not entry["file"].startswith(LISTS[name]):
            raise BadMutants(f"{where}: {entry['file']} is not under {LISTS[name]} (the {name} list)")
        target = REPO / entry["file"]
        if not target.is_file():
            raise BadMutants(f"{where}: no file {entry['file']}")
        count = target.read_text(encoding="utf-8").count(entry["find"])
        if count != 1 or entry["find"] == entry["replace"]:
            raise BadMutants(f"{where}: `find` occurs {count} times in {entry['file']} (expected once, and a change)")
        try:
            re.compile(entry.get("by") or "")
        except re.error as error:
            raise BadMutants(f"{where}: `by` is not a regular expression: {error}") from None
        mutants.append(Mutant(**{**entry, "files": tuple(entry["files"]), "list": name}))
    return mutants


def load_lists(names: list[str] | tuple[str, ...] = tuple(LISTS), folder: Path = HERE) -> list[Mutant]:
    """Every mutant of the named lists, ids unique over all of them."""
    mutants: list[Mutant] = []
    for name in names:
        for path in list_files(name, folder):
            mutants += load_mutants(path, name)
    seen: set[str] = set()
    for mutant in mutants:
        if mutant.id in seen:
            raise BadMutants(f"mutant {mutant.id}: the id is used twice")
        seen.add(mutant.id)
    return mutants


def copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def environment(copy: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **ENVIRONMENT, "PYTHONPATH": path}


def imports_from(copy: Path) -> None:
    """The copy's `impl` and `harness` must be the ones imported (the package is installed editable)."""
    code = "import impl, harness; print(impl.__file__); print(harness.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=environment(copy), capture_output=True, text=True)
    paths = out.stdout.split()
    if len(paths) != 2 or not all(Path(p).resolve().is_relative_to(copy.resolve()) for p in paths):
        raise SystemExit(f"the copy's modules are not the ones imported: {paths or out.stderr.strip()}")


def preload() -> None:
    """Import the heavy third-party modules once, here, so that each forked test run starts in a second
    instead of spending ~6 s on torch and transformers. Never `impl`, `harness` or `tests`: a forked child
    imports those afresh, from the mutated copy (nor pytest and hypothesis, whose modules pytest rewrites)."""
    os.environ.update(ENVIRONMENT)  # read at import time (the hub's offline switch, OpenMP's threads)
    import scipy.stats  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import T5ForConditionalGeneration, Trainer  # noqa: F401

    assert not {"impl", "harness", "tests"} & set(sys.modules), "the runner itself must not import the code under test"


def run_tests(copy: Path, selection: tuple[str, ...], timeout: float) -> tuple[str, str, float]:
    """("passed" | "failed" | "timeout" | "empty", the first failing test, seconds): `pytest -x` on the selection in a
    forked child (its own process group, its output in a file), with the copy first on the path."""
    # plugins the preloaded modules already imported (anyio) cannot have their asserts rewritten: not an error
    arguments = ["-x", "-q", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning", *selection]
    start = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as output:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.setsid()
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                os.chdir(copy)
                os.environ.update(environment(copy))  # for the tests' own subprocesses
                sys.path.insert(0, str(copy))
                import pytest

                code = int(pytest.main(arguments))
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        status = None
        while status is None and time.monotonic() - start < timeout:
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(raw) if done else None
            if status is None:
                time.sleep(0.05)
        seconds = time.monotonic() - start
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", "", seconds
        if status in (0, 5):  # 5: pytest collected no test
            return "passed" if status == 0 else "empty", "", seconds
        output.seek(0)
        text = output.read()
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.MULTILINE)
    return "failed", failed[0] if failed else (text.strip().splitlines() or [f"exit {status}"])[-1], seconds


def baseline_selections(mutants: list[Mutant]) -> list[tuple[str, ...]]:
    """The mutants' selections unmutated, in one pytest run per set of files (their `-k`s or-ed)."""
    groups: dict[tuple[str, ...], set[str] | None] = {}
    for mutant in mutants:
        known = groups.setdefault(mutant.files, set())
        if known is not None:
            groups[mutant.files] = None if mutant.k is None else known | {mutant.k}
    return [
        (*files, *(("-k", " or ".join(f"({k})" for k in sorted(ks))) if ks else ())) for files, ks in groups.items()
    ]


def verdict(mutant: Mutant, outcome: str, test: str, whole: tuple[str, str] | None) -> str:
    """killed | misattributed | survived | explained | empty (the selection holds no test), from the focused run
    and, when it ran, the whole suite's."""
    if outcome == "empty":
        return "empty"
    if outcome == "timeout" or (outcome == "failed" and mutant.meant_for(test)):
        return "killed"
    if outcome == "failed":
        return "misattributed"
    if whole is not None and whole[0] != "passed":
        return "misattributed"
    return "explained" if mutant.survives else "survived"


def summary(results: list[dict], by_id: dict[str, Mutant], name: str) -> tuple[list[str], bool]:
    """The report lines of list `name` and whether it meets its bar."""
    mine = [r for r in results if by_id[r["id"]].list == name]
    killed = sum(r["verdict"] in ("killed", "misattributed") for r in mine)
    rate = killed / len(mine) if mine else 1.0
    seconds = sum(r["seconds"] for r in mine)
    lines = [f"{name}: killed {killed} of {len(mine)} ({100.0 * rate:.0f}%) in {seconds / 60:.1f} min"]
    for r in mine:
        mutant = by_id[r["id"]]
        if r["verdict"] == "explained":
            lines.append(f"  survived, explained: {mutant.id}: {mutant.survives}")
        elif r["verdict"] == "survived":
            lines.append(f"  SURVIVED: {mutant.id}: {mutant.bug}")
        elif r["verdict"] == "misattributed":
            lines.append(f"  MISATTRIBUTED: {mutant.id}: killed by {r['by']}, meant for /{mutant.by}/")
        elif r["verdict"] == "empty":
            lines.append(f"  NO TEST: {mutant.id}: its selection {' '.join(mutant.selection)} holds no test")
    ok = rate >= TARGET and all(r["verdict"] in ("killed", "explained") for r in mine)
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lists", nargs="*", metavar="LIST", help="impl, harness (default both)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run (default 600)")
    parser.add_argument("--no-fallback", action="store_true", help="do not run the whole suite for a survivor")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.lists)) or list(LISTS)
    if set(names) - set(LISTS):
        print(f"no list {sorted(set(names) - set(LISTS))}; the lists are {', '.join(LISTS)}", file=sys.stderr)
        return 2
    try:
        mutants = load_lists(names)
    except BadMutants as error:
        print(error, file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"--only: no mutant {unknown} in the list{'s' if len(names) > 1 else ''} {', '.join(names)}",
                  file=sys.stderr)  # fmt: skip
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.list:8} {mutant.id:40} {mutant.file:38} {mutant.bug}")
        print(", ".join(f"{name}: {sum(m.list == name for m in mutants)} mutants" for name in names))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        copy = Path(folder)
        copy_repository(copy)
        imports_from(copy)
        preload()
        for selection in baseline_selections(mutants):
            outcome, test, seconds = run_tests(copy, selection, args.timeout)
            if outcome != "passed":
                print(f"the unmutated tests {' '.join(selection)} do not pass ({outcome}: {test})", file=sys.stderr)
                return 1
            print(f"baseline: {' '.join(selection)[:100]} passed in {seconds:.0f} s", flush=True)
        for mutant in mutants:
            target = copy / mutant.file
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(mutant.find, mutant.replace), encoding="utf-8")
            try:
                outcome, test, seconds = run_tests(copy, mutant.selection, args.timeout)
                whole = None
                if outcome == "passed" and not mutant.survives and not args.no_fallback:  # the whole suite
                    whole_outcome, test, whole_seconds = run_tests(copy, WHOLE_SUITE, args.timeout * 3)
                    whole, seconds = (whole_outcome, test), seconds + whole_seconds
            finally:
                target.write_text(original, encoding="utf-8")
            result = verdict(mutant, outcome, test, whole)
            results.append({"id": mutant.id, "list": mutant.list, "verdict": result, "by": test, "seconds": seconds})
            shown = {
                "killed": f"killed ({'timeout' if outcome == 'timeout' else test})",
                "misattributed": f"MISATTRIBUTED (killed by {test}{' in the whole suite' if whole else ''})",
                "survived": "SURVIVED",
                "explained": "survived (explained)",
                "empty": "NO TEST",
            }[result]
            print(f"{mutant.list:8} {mutant.id:40} {seconds:6.1f} s  {shown}", flush=True)
    by_id = {m.id: m for m in mutants}
    ok = True
    for name in names:
        lines, meets = summary(results, by_id, name)
        ok = ok and meets
        print("\n".join(lines))
    if args.json:
        report = {name: [r for r in results if r["list"] == name] for name in names}
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
