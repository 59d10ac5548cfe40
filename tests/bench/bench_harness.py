"""What the bench tests share: where the source tree and the build are, and echolab-bench run
on a spec of the test's own, written to a scratch folder."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("ECHOLAB_BINARY_DIR", os.path.join(REPO, "build", "debug"))
BENCH = os.path.join(REPO, "bench", "echolab-bench")


def run_bench(spec, folder, run_id, *extra, timeout, prefix=(), env=None):
    """Writes `spec` into `folder` and runs `prefix... echolab-bench` on it against BUILD_DIR
    (prefix: `prlimit --nofile=S:H`, say), in `env` if given (default: this one); the result
    set is folder/run_id. Returns the CompletedProcess."""
    spec_path = os.path.join(folder, spec["name"] + ".json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    return subprocess.run([*prefix, sys.executable, BENCH, "--spec", spec_path, "--out", folder, "--run-id", run_id,
                           "--build-dir", BUILD_DIR, *extra], capture_output=True, text=True, timeout=timeout,
                          env=env)
