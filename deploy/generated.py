"""Shared by the scripts that generate files under deploy/ from another
source (make-dashboard.py, make-prometheusrule.py): write the file, or with
--check only compare (CI), so a hand edit of a generated file is caught."""
import pathlib
import sys


def write_or_check(out: pathlib.Path, text: str, script: str, usage: str) -> int:
    """Exit status: 0 written or up to date, 1 out of date (--check), 2 usage."""
    args = sys.argv[1:]
    if args == ["--check"]:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date: run {script}", file=sys.stderr)
            return 1
        return 0
    if args:
        print(usage, file=sys.stderr)
        return 2
    out.write_text(text)
    return 0
