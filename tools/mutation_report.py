"""Mutation testing of the core modules: run mutmut (one worker) and print the kill rate of each.

    python tools/mutation_report.py                  # run what is not yet checked, then report
    python tools/mutation_report.py _wire _hub       # (re)run every mutant of these modules
    python tools/mutation_report.py --rerun-survivors  # after adding tests: rerun the survivors
    python tools/mutation_report.py --no-run         # report from mutmut's cache in mutants/
    python tools/mutation_report.py --fail-under 90  # exit 1 when a module is below 90%
    python tools/mutation_report.py --max-children 2  # two workers (default: one)

mutmut's settings (the files to mutate, the tests to run) are ``[tool.mutmut]`` in
pyproject.toml; its cache is ``mutants/`` (git-ignored): a plain run only checks the mutants it
has no result for (and the mutants of every function whose source changed since), so delete
``mutants/`` to start over. Runs use one worker unless ``--max-children`` says more (the
machine is shared) and a 30 s per-test timeout (the slowest test takes about 10 s under
mutmut), so a mutant that makes a wait hang is killed in 30 s rather than 120 s. A module whose
source changed after its mutants were made is reported as ``stale``: run again to update it.

A mutant counts as killed when a test failed or timed out with it. Mutants judged equivalent (no
test can tell them from the original) are listed, each with its reason, in
``tools/mutation_equivalent.txt`` and left out of the rate:
``rate = killed / (mutants - equivalent)``. An equivalent mutant that a test kills anyway is
reported, so the list can be trimmed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tools" / "mutation_equivalent.txt"

#: The core modules, as mutmut names their mutants (``<module>.<function>__mutmut_<n>``).
MODULES = {
    "upscale_async._spec.validation": "upscale_async/_spec/validation.py",
    "upscale_async._wire": "upscale_async/_wire.py",
    "upscale_async._batch": "upscale_async/_batch.py",
    "upscale_async._results": "upscale_async/_results.py",
    "upscale_async.webhooks._verifiers": "upscale_async/webhooks/_verifiers.py",
    "upscale_async.webhooks._hub": "upscale_async/webhooks/_hub.py",
    "upscale_async._completion": "upscale_async/_completion.py",
    "upscale_async._transport": "upscale_async/_transport.py",
}

# mutmut's exit codes (mutmut/stats.py): a failing test (1, 3) or a timeout kills the mutant.
_KILLED = {1, 3, 24, -24, 152, 255, 36, 37}
_TIMEOUT = {24, -24, 152, 255, 36}
_SURVIVED = {0}
_NO_TESTS = {5, 33}
_NOT_CHECKED = {None, 2, 34}


def read_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """``mutant name -> reason`` from the equivalents file (``name  # reason`` per line)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        name, reason = name.strip(), reason.strip()
        if not reason:
            raise SystemExit(f"{path.name}: {name} has no reason (write 'name  # why')")
        out[name] = reason
    return out


def exit_codes(root: Path, source: str) -> dict[str, int | None]:
    """mutmut's cached exit code of every mutant of one source file (empty when not run)."""
    meta = root / "mutants" / (source + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text(encoding="utf-8"))
    codes: dict[str, int | None] = data.get("exit_code_by_key", {})
    return codes


@dataclass
class Summary:
    """One module's mutants: counted ones (not equivalent) by outcome."""

    module: str
    total: int
    equivalent: int
    killed: int
    timeout: int
    survived: list[str]
    no_tests: list[str]
    not_checked: list[str]
    suspicious: list[str]
    equivalent_killed: list[str]

    @property
    def counted(self) -> int:
        return self.total - self.equivalent

    @property
    def rate(self) -> float:
        return self.killed / self.counted if self.counted else 1.0


def summarize(module: str, codes: dict[str, int | None], equivalent: dict[str, str]) -> Summary:
    """The counts of one module, with the equivalent mutants left out of the rate."""
    names = [n for n in codes if n.startswith(module + ".")]
    excluded = [n for n in names if n in equivalent]
    counted = [n for n in names if n not in equivalent]
    known = _KILLED | _SURVIVED | _NO_TESTS | _NOT_CHECKED
    return Summary(
        module=module,
        total=len(names),
        equivalent=len(excluded),
        killed=sum(codes[n] in _KILLED for n in counted),
        timeout=sum(codes[n] in _TIMEOUT for n in counted),
        survived=sorted(n for n in counted if codes[n] in _SURVIVED),
        no_tests=sorted(n for n in counted if codes[n] in _NO_TESTS),
        not_checked=sorted(n for n in counted if codes[n] in _NOT_CHECKED),
        suspicious=sorted(n for n in counted if codes[n] not in known),
        equivalent_killed=sorted(n for n in excluded if codes[n] in _KILLED),
    )


def is_stale(root: Path, source: str) -> bool:
    """True when ``source`` changed after mutmut made its mutants (its cached rates are old).

    The same test mutmut makes before a run: a source file newer than its mutated copy.
    """
    mutated = root / "mutants" / source
    if not mutated.exists():
        return False
    return (root / source).stat().st_mtime > mutated.stat().st_mtime


def run_mutmut(names: list[str], max_children: int = 1) -> None:
    """``mutmut run --max-children N``: the unchecked mutants, or exactly ``names`` (globs)."""
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
    env = {**os.environ, "PYTEST_ADDOPTS": f"{os.environ.get('PYTEST_ADDOPTS', '')} --timeout=30"}
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=False)


def _select(names: list[str]) -> list[str]:
    if not names:
        return list(MODULES)
    chosen = []
    for name in names:
        found = [m for m in MODULES if m == name or m.endswith("." + name.lstrip("."))]
        if len(found) != 1:
            raise SystemExit(f"unknown module {name!r}; one of: {', '.join(MODULES)}")
        chosen.append(found[0])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("modules", nargs="*", help="modules to (re)run in full (default: all)")
    parser.add_argument("--no-run", action="store_true", help="only report mutmut's cache")
    parser.add_argument(
        "--rerun-survivors", action="store_true", help="rerun the surviving mutants only"
    )
    parser.add_argument("--fail-under", type=float, default=None, metavar="PERCENT")
    parser.add_argument("--show-survivors", action="store_true", help="list surviving mutants")
    parser.add_argument(
        "--max-children", type=int, default=1, metavar="N", help="mutmut workers (default: 1)"
    )
    args = parser.parse_args(argv)
    if args.max_children < 1:
        parser.error("--max-children must be at least 1")
    modules = _select(args.modules)
    if args.rerun_survivors:
        equivalent = read_equivalent()
        names = [
            name
            for module in modules
            for name in summarize(module, exit_codes(ROOT, MODULES[module]), equivalent).survived
        ]
        if names:
            run_mutmut(names, args.max_children)
    elif not args.no_run:
        globs = [f"{module}.*" for module in modules] if args.modules else []
        run_mutmut(globs, args.max_children)
    equivalent = read_equivalent()
    failed = False
    print()
    print(f"{'module':<36} {'killed/counted':>15} {'rate':>7}  survived timeout no-tests equiv")
    for module in modules:
        s = summarize(module, exit_codes(ROOT, MODULES[module]), equivalent)
        if not s.total:
            print(f"{module:<36} {'not run':>15}")
            failed = True
            continue
        line = (
            f"{module:<36} {s.killed:>7}/{s.counted:<7} {s.rate:>7.1%}  {len(s.survived):>8} "
            f"{s.timeout:>7} {len(s.no_tests):>8} {s.equivalent:>5}"
        )
        if s.suspicious:
            line += f"  suspicious {len(s.suspicious)}"
        if s.not_checked:
            line += f"  not checked {len(s.not_checked)}"
        if is_stale(ROOT, MODULES[module]):
            line += "  stale (the source changed since: run again)"
        print(line)
        if args.show_survivors:
            for name in [*s.survived, *s.no_tests, *s.suspicious, *s.not_checked]:
                print(f"    {name}")
        for name in s.equivalent_killed:
            print(f"    listed as equivalent but killed: {name}")
        if args.fail_under is not None and s.rate * 100 < args.fail_under:
            failed = True
    return 1 if failed and args.fail_under is not None else 0


if __name__ == "__main__":
    sys.exit(main())
