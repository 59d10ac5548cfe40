#!/usr/bin/python3
"""echolab-loadgen spreading its connections over several 127.0.0.x source addresses:

- forced with --source-addresses, the server sees peers from every address of the range
  (read on the server's side with `ss`), and every echo is verified;
- automatically, in a network namespace of the test's own whose ephemeral port range is
  made tiny (50 ports): 120 connections fit only over several source addresses, and before
  they were spread they failed with EADDRNOTAVAIL;
- a bad value, a non-loopback target and a datagram transport are one line and exit 2.

    source_addresses_test.py SERVER_BINARY LOADGEN_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from echo_server import EchoServer

SERVER = sys.argv.pop(1) if len(sys.argv) > 2 else "build/ci/servers/echolab-server"
LOADGEN = sys.argv.pop(1) if len(sys.argv) > 1 else "build/ci/loadgen/echolab-loadgen"


def stream_engine():
    """A multiplexed stream engine that can watch any descriptor, from the server's registry."""
    table = json.loads(subprocess.run([SERVER, "--list-engines", "--json"], capture_output=True, text=True,
                                      timeout=30, check=True).stdout)
    for row in table:
        if (row.get("available") and row["serves"] == "streams" and row["concurrency"] == "multiplexed"
                and row.get("descriptors_below") is None and row.get("cap_option") is None):
            return row["name"]
    raise unittest.SkipTest("no multiplexed stream engine in the registry")


def loadgen(*args, timeout=30):
    return subprocess.run([LOADGEN, *args], capture_output=True, text=True, timeout=timeout)


def peer_addresses(port):
    """The peer addresses of the server's established connections on `port`, from `ss`."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, timeout=10).stdout
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


class Forced(unittest.TestCase):
    def test_every_source_address_reaches_the_server_and_every_echo_is_verified(self):
        if not shutil.which("ss"):
            self.skipTest("ss (iproute2) is not installed")
        with EchoServer(SERVER, stream_engine(), "127.0.0.1:0") as server, tempfile.TemporaryDirectory() as scratch:
            out = os.path.join(scratch, "out.json")
            run = subprocess.Popen([LOADGEN, "--target", server.address, "-c", "40", "--source-addresses",
                                    "127.0.0.1-127.0.0.4", "--warmup", "0.2s", "--duration", "1.5s",
                                    "--timeout", "1s", "--quiet", "--no-status", "--json", out],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen = set()
            deadline = time.monotonic() + 10
            try:
                while run.poll() is None and time.monotonic() < deadline and len(seen) < 4:
                    seen |= peer_addresses(server.port)
                    time.sleep(0.05)
                _, err = run.communicate(timeout=20)
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait()
            self.assertEqual(run.returncode, 0, err)
            self.assertEqual(seen, {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"})
            self.assertIn("spread over 4 source addresses 127.0.0.1-127.0.0.4", err)
            with open(out) as f:
                result = json.load(f)
            self.assertEqual(result["errors"]["total"], 0, result["errors"])
            self.assertEqual(result["messages"]["warmup_failures"], 0)
            self.assertGreater(result["messages"]["received"], 0)
            self.assertEqual(result["anomalies"]["mismatched_bytes"], 0)


class Automatic(unittest.TestCase):
    SCRIPT = r"""
set -e
ip link set lo up
echo "40000 40049" > /proc/sys/net/ipv4/ip_local_port_range
"$SERVER" --engine "$ENGINE" --listen 127.0.0.1:7007 --stats-json "$DIR/stats.json" > "$DIR/ready" &
server=$!
for i in $(seq 200); do grep -q listening "$DIR/ready" && break; sleep 0.05; done
set +e
"$LOADGEN" --target 127.0.0.1:7007 -c 120 --warmup 0.2s --duration 0.5s --timeout 1s --quiet --no-status \
  --json "$DIR/out.json" 2> "$DIR/err"
status=$?
kill -TERM $server
wait $server
exit $status
"""

    def test_connections_past_the_port_range_are_spread_over_source_addresses(self):
        if not shutil.which("unshare") or not shutil.which("ip"):
            self.skipTest("needs unshare and ip (util-linux, iproute2)")
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
        if probe.returncode != 0:
            self.skipTest("cannot create a network namespace here (needs root)")
        with tempfile.TemporaryDirectory() as scratch:
            env = dict(os.environ, SERVER=SERVER, LOADGEN=LOADGEN, DIR=scratch, ENGINE=stream_engine())
            run = subprocess.run(["unshare", "--net", "/bin/sh", "-c", self.SCRIPT], env=env, capture_output=True,
                                 text=True, timeout=60)
            with open(os.path.join(scratch, "err")) as f:
                err = f.read()
            self.assertEqual(run.returncode, 0, run.stderr + err)
            with open(os.path.join(scratch, "out.json")) as f:
                result = json.load(f)
            # From one address, 70 of the 120 connects failed (EADDRNOTAVAIL) and kept failing.
            self.assertEqual(result["messages"]["warmup_failures"], 0)
            self.assertEqual(result["errors"]["total"], 0, result["errors"])
            # 50 ports, half of them per address: 25 connections each, 5 addresses for 120.
            self.assertIn("120 connections spread over 5 source addresses 127.0.0.1-127.0.0.5", err)
            self.assertGreater(result["messages"]["received"], 0)
            with open(os.path.join(scratch, "stats.json")) as f:
                stats = json.load(f)
            self.assertGreaterEqual(stats["connections_peak"], 120)


class Mistakes(unittest.TestCase):
    def assert_one_line(self, run, needle):
        self.assertEqual(run.returncode, 2, run.stderr)
        lines = run.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertTrue(lines[0].startswith("echolab-loadgen: "), lines[0])
        self.assertIn(needle, lines[0])

    def test_bad_values_are_one_line(self):
        with EchoServer(SERVER, stream_engine(), "127.0.0.1:0") as server:
            for value, needle in (("0", "from 1 to 1024"), ("2000", "from 1 to 1024"),
                                  ("10.0.0.1-10.0.0.4", "loopback addresses (127.0.0.0/8)"),
                                  ("127.0.0.9-127.0.0.1", "first address is past its last"),
                                  ("127.0.0.1-127.0.9.1", "at most 1024"), ("lots", "expected a count"),
                                  ("", "expected a count")):
                with self.subTest(value=value):
                    self.assert_one_line(loadgen("--target", server.address, "--source-addresses", value,
                                                 "--duration", "0.1s"), needle)

    def test_a_datagram_transport_is_one_line(self):
        self.assert_one_line(loadgen("--target", "127.0.0.1:9", "--transport", "udp", "--source-addresses", "2"),
                             "--source-addresses is for --transport tcp")

    def test_a_target_that_is_not_ipv4_loopback_is_one_line(self):
        try:
            server = EchoServer(SERVER, stream_engine(), "[::1]:0")
        except RuntimeError as error:
            self.skipTest(f"no IPv6 loopback here: {error}")
        with server:
            self.assert_one_line(loadgen("--target", server.address, "--source-addresses", "2", "--duration", "0.1s"),
                                 "needs an IPv4 loopback target over tcp")


if __name__ == "__main__":
    unittest.main(verbosity=2)
