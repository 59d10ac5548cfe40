"""An installed echolab works without its source tree: install the build into a scratch
prefix, hide the checkout (a tmpfs over it, in a private mount namespace), and from a
directory outside it run echolab-server --list-engines, a one-cell echolab-bench run (its
defaults must find the installed programs and write ./results), echolab-plot on the result
(when matplotlib is there), and --version of the Python tools (the installed commit).

    install_test.py BUILD_DIR SOURCE_DIR [CMAKE]
Exits 77 (skipped) where a mount namespace is not permitted (unshare -m needs root)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def run(command, **kwargs):
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=kwargs.pop("timeout", 60), **kwargs)


def check(result, what):
    if result.returncode != 0:
        raise SystemExit(f"FAIL: {what}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    print(f"ok: {what}", flush=True)
    return result.stdout


def inside(source_dir, prefix, work):
    """In the private mount namespace: the checkout hidden, the installed tools alone.
    SOURCE_DIR "-": there is no checkout to hide (a clean root the package was installed into)."""
    if source_dir != "-":
        check(run(["mount", "-t", "tmpfs", "-o", "size=1m", "echolab-hidden", source_dir]), "hide the source tree")
        if os.listdir(source_dir):
            raise SystemExit(f"FAIL: {source_dir} still shows files")
    os.chdir(work)
    env = {"PATH": os.path.join(prefix, "bin") + ":/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"}
    bin_dir = os.path.join(prefix, "bin")
    engines = check(run([os.path.join(bin_dir, "echolab-server"), "--list-engines"], env=env),
                    "echolab-server --list-engines")
    if "select" not in engines:
        raise SystemExit(f"FAIL: --list-engines does not name select:\n{engines}")
    server_commit = check(run([os.path.join(bin_dir, "echolab-server"), "--version"], env=env),
                          "echolab-server --version").split("(commit ")[1].split(";")[0]
    for tool in ("echolab-bench", "echolab-compare", "echolab-plot"):
        line = check(run([os.path.join(bin_dir, tool), "--version"], env=env), f"{tool} --version").strip()
        if f"(commit {server_commit};" not in line or "installed in " + prefix not in line:
            raise SystemExit(f"FAIL: {tool} --version says {line!r}; the installed programs are at {server_commit}")
    # No --build-dir, no --out: the defaults must be the installed bin/ and ./results.
    check(run(["echolab-bench", "--spec", "ci", "--only", "select_tcp_closed_c1", "--duration", "0.3",
               "--repetitions", "1", "--run-id", "installed", "--server-cpus", "0", "--client-cpus", "0"],
              env=env, timeout=120), "echolab-bench one cell")
    manifest_path = os.path.join(work, "results", "installed", "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    statuses = [cell["status"] for cell in manifest["cells"]]
    if statuses != ["ok"]:
        raise SystemExit(f"FAIL: the cell's status is {statuses}: {manifest['cells']}")
    print("ok: the cell ran and is ok, in ./results", flush=True)
    if run(["/usr/bin/python3", "-c", "import matplotlib"]).returncode != 0:
        print("skipped: echolab-plot (python3-matplotlib is not installed)")
        return 0
    check(run(["echolab-plot", "--quiet", os.path.dirname(manifest_path)], env=env, timeout=120), "echolab-plot")
    if not os.path.isfile(os.path.join(work, "results", "installed", "figures", "report.html")):
        raise SystemExit("FAIL: echolab-plot wrote no report.html")
    print("ok: echolab-plot wrote report.html", flush=True)
    return 0


def main():
    if sys.argv[1] == "--inside":
        return inside(*sys.argv[2:5])
    build_dir, source_dir = (os.path.realpath(p) for p in sys.argv[1:3])
    cmake = sys.argv[3] if len(sys.argv) > 3 else "cmake"  # the build's own, from ctest
    if run(["unshare", "-m", "--propagation", "private", "true"]).returncode != 0:
        print("skipped: unshare -m is not permitted here (a private mount namespace needs root)")
        return SKIP
    scratch = tempfile.mkdtemp(prefix="echolab-install-")
    try:
        if os.path.realpath(scratch).startswith(source_dir + os.sep):
            raise SystemExit(f"FAIL: the scratch prefix {scratch} is inside the source tree")
        prefix, work = os.path.join(scratch, "prefix"), os.path.join(scratch, "work")
        os.mkdir(work)
        check(run([cmake, "--install", build_dir, "--prefix", prefix]), f"cmake --install into {prefix}")
        leftovers = [p for p in glob.glob(os.path.join(prefix, "bin", "*")) if "test" in os.path.basename(p)]
        if leftovers:
            raise SystemExit(f"FAIL: test programs installed: {leftovers}")
        # This script is read before the tree is hidden; the rest runs from the standard library.
        result = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                                 os.path.abspath(__file__), "--inside", source_dir, prefix, work], timeout=240)
        return result.returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
