"""What the bench tests share: where the source tree and the build are, and echolab-bench run
on a spec of the test's own, written to a scratch folder."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import schema_check

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


class ResultSetCase(unittest.TestCase):
    """Tests over one echolab-bench run of the class's SPEC (a spec of the test's own), made
    once for the class in a scratch folder: `completed` (the CompletedProcess) and `out`
    (the result set), removed after the class."""

    SPEC = None
    TIMEOUT = 240

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="echolab-bench-test-")
        cls.completed = run_bench(cls.SPEC, cls.tmp.name, cls.SPEC["name"], timeout=cls.TIMEOUT)
        cls.out = os.path.join(cls.tmp.name, cls.SPEC["name"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def load(self, relative):
        with open(os.path.join(self.out, relative)) as f:
            return json.load(f)

    def check_schemas(self):
        """The manifest, every cell record and the load generator's results in them against
        results/schema/; skipped without python3-jsonschema."""
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        manifest = self.load("manifest.json")
        validators["bench-manifest"].validate(manifest)
        for entry in manifest["cells"]:
            record = self.load(entry["file"])
            validators["bench-cell"].validate(record)
            if "loadgen" in record and "loadgen-result" in validators:
                validators["loadgen-result"].validate(record["loadgen"])
