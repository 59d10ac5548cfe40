"""Every echolab program (the C++ ones and the Python tools) reports the same version line, and its commit is the source tree's
as it is now: a binary built after a commit must not report the commit of an older
configure (results record it as what produced them).

    version_test.py SOURCE_DIR PROGRAM...
Exits 77 (skipped) where the source tree is not a git checkout."""
import re
import subprocess
import sys


def tree_commit(source_dir):
    head = subprocess.run(["git", "-C", source_dir, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, timeout=30)
    if head.returncode != 0:
        return None
    status = subprocess.run(["git", "-C", source_dir, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=30)
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def main():
    source_dir, programs = sys.argv[1], sys.argv[2:]
    expected = tree_commit(source_dir)
    if expected is None:
        print("skipped: the source tree is not a git checkout")
        return 77
    failures, versions = [], set()
    for program in programs:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
        line = out.stdout.strip()
        match = re.fullmatch(r"(\S+) (\S+) \(commit (\S+); [^;]+; [^)]*\)", line)
        if out.returncode != 0 or match is None:
            failures.append(f"{program}: exit {out.returncode}, unexpected version line {line!r}")
            continue
        versions.add(match.group(2))
        if match.group(3) != expected:
            failures.append(f"{program}: reports commit {match.group(3)}, the source tree is at {expected}")
    if len(versions) > 1:
        failures.append(f"the programs disagree on the version: {sorted(versions)}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
