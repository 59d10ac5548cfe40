"""Where the echolab Python tools run from: a source checkout, or an installed copy
(PREFIX/share/echolab mirrors the source layout; PREFIX/bin holds the programs).

An install carries echolab-version.json, written at build time beside the C++ programs'
version header, so the Python tools report the commit of the programs installed with them.
In a checkout the tools run the tree's own files, so its git commit is what they are."""
import argparse
import json
import os
import platform
import re
import subprocess

# bench/.. in a checkout, PREFIX/share/echolab installed.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION_FILE = os.path.join(ROOT, "echolab-version.json")
INSTALLED = os.path.isfile(VERSION_FILE)
# GNUInstallDirs' defaults: share/echolab/../../bin, the same path the launchers climb.
BIN_DIR = os.path.normpath(os.path.join(ROOT, "..", "..", "bin")) if INSTALLED else None


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _source_version():
    try:
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            match = re.search(r"project\(echolab VERSION (\S+)", f.read())
        return match.group(1) if match else "unknown"
    except OSError:
        return "unknown"


def version_info():
    """{"version", "git_commit"} of what runs: the install's file, or the checkout."""
    if INSTALLED:
        try:
            with open(VERSION_FILE) as f:
                info = json.load(f)
            return {"version": str(info["version"]), "git_commit": str(info["git_commit"])}
        except (OSError, ValueError, KeyError):
            return {"version": "unknown", "git_commit": "unknown"}
    head = _git("rev-parse", "--short=12", "HEAD")
    if head is None:
        commit = "unknown"
    else:
        commit = head + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")
    return {"version": _source_version(), "git_commit": commit}


def version_line(tool):
    """The C++ programs' shape: "TOOL VERSION (commit C; RUNTIME; WHERE)"."""
    info = version_info()
    where = "installed in " + ROOT if INSTALLED else "source tree " + ROOT
    return f"{tool} {info['version']} (commit {info['git_commit']}; Python {platform.python_version()}; {where})"


class _VersionAction(argparse.Action):
    """argparse's own "version" action, computed only when asked (it runs git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line(parser.prog))
        parser.exit()


def add_version_argument(parser):
    parser.add_argument("--version", action=_VersionAction, help="print the version and commit, and exit")
