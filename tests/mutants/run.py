"""Mutation testing of `impl/`: apply each hand-written bug of `mutants.yaml` and see whether the suite kills it.

    python tests/mutants/run.py [--only ID ...] [--list] [--timeout S] [--json PATH]     (or `tox -e mutants`)

Each mutant is one textual change of one file (`find`, which must occur exactly once, becomes `replace`),
modelling a bug a careful implementer could make that keeps everything running. The repository's files
(tracked and untracked-not-ignored) are copied once into a temporary folder, and every run happens there:
this checkout is never touched. For each mutant the selected tests (`files`, and `-k` when given: the
relevant ones, for speed) run with `pytest -x`; the mutant is killed when they fail (or time out) and
survives when they pass. The selections are first run unmutated: a mutant is only killed against green
tests. Exit 0 when every mutant is killed or its survival is explained (`survives:`), 1 otherwise, 2 for
a bad mutants file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).with_name("mutants.yaml")
KEYS = {"id", "file", "find", "replace", "bug", "files", "k", "survives"}
REQUIRED = {"id", "file", "find", "replace", "bug", "files"}
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
    survives: str | None = None

    @property
    def selection(self) -> tuple[str, ...]:
        return (*self.files, *(("-k", self.k) if self.k else ()))


class BadMutants(Exception):
    pass


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """The mutants of `path`, each checked: known keys, `find` exactly once in `file`, ids unique."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise BadMutants(f"{path}: expected a list of mutants")
    mutants, seen = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"{path.name}: mutant {number} ({entry.get('id', '?') if isinstance(entry, dict) else '?'})"
        if not isinstance(entry, dict) or REQUIRED - set(entry) or set(entry) - KEYS:
            keys = sorted(set(entry) if isinstance(entry, dict) else [])
            raise BadMutants(f"{where}: keys {keys}; required {sorted(REQUIRED)}, allowed {sorted(KEYS)}")
        if entry["id"] in seen:
            raise BadMutants(f"{where}: the id is used twice")
        seen.add(entry["id"])
        target = REPO / entry["file"]
        if not target.is_file():
            raise BadMutants(f"{where}: no file {entry['file']}")
        count = target.read_text(encoding="utf-8").count(entry["find"])
        if count != 1 or entry["find"] == entry["replace"]:
            raise BadMutants(f"{where}: `find` occurs {count} times in {entry['file']} (expected once, and a change)")
        mutants.append(Mutant(**{**entry, "files": tuple(entry["files"])}))
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


def run_tests(copy: Path, selection: tuple[str, ...], timeout: float) -> tuple[str, str, float]:
    """("passed" | "failed" | "timeout", the first failing test, seconds)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *selection]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", "", time.monotonic() - start
    seconds = time.monotonic() - start
    if done.returncode == 0:
        return "passed", "", seconds
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, flags=re.MULTILINE)
    return "failed", failed[0] if failed else (done.stdout + done.stderr).strip().splitlines()[-1:][0], seconds


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run (default 600)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        mutants = load_mutants()
    except BadMutants as error:
        print(error, file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"--only: no mutant {unknown}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id:32} {mutant.file:38} {mutant.bug}")
        print(f"{len(mutants)} mutants")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        copy = Path(folder)
        copy_repository(copy)
        imports_from(copy)
        for selection in baseline_selections(mutants):
            outcome, test, seconds = run_tests(copy, selection, args.timeout)
            if outcome != "passed":
                print(f"the unmutated tests {' '.join(selection)} do not pass ({outcome}: {test})", file=sys.stderr)
                return 1
            print(f"baseline: {' '.join(selection)[:100]} passed in {seconds:.0f} s", flush=True)
        results = []
        for mutant in mutants:
            target = copy / mutant.file
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(mutant.find, mutant.replace), encoding="utf-8")
            try:
                outcome, test, seconds = run_tests(copy, mutant.selection, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            killed = outcome != "passed"
            results.append({"id": mutant.id, "killed": killed, "outcome": outcome, "by": test, "seconds": seconds})
            status = f"killed ({'timeout' if outcome == 'timeout' else test})" if killed else "SURVIVED"
            print(f"{mutant.id:32} {seconds:6.1f} s  {status}", flush=True)
    by_id = {m.id: m for m in mutants}
    survivors = [r["id"] for r in results if not r["killed"]]
    explained = [i for i in survivors if by_id[i].survives]
    unexplained = [i for i in survivors if not by_id[i].survives]
    killed = len(results) - len(survivors)
    print(f"killed {killed} of {len(results)} ({100.0 * killed / max(len(results), 1):.0f}%)")
    for name in explained:
        print(f"  survived, explained: {name}: {by_id[name].survives}")
    for name in unexplained:
        print(f"  SURVIVED: {name}: {by_id[name].bug}")
    if args.json:
        args.json.write_text(json.dumps({"killed": killed, "total": len(results), "results": results}, indent=2))
    return 0 if not unexplained else 1


if __name__ == "__main__":
    sys.exit(main())
