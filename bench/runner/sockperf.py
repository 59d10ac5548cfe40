"""sockperf's ping-pong client (Debian's sockperf 3.7), driven the same way wherever echolab
meets it: the runner's reference cells and sockperf_client side runs, and
bench/sockperf_peer.py. Its command line, for one socket or several multiplexed by the client
through a feed file, and its summary parsed."""
import os
import re
import socket
import time

# sockperf's own header: a message is never shorter (README, "sockperf"); and the largest
# message its -m takes.
MIN_MESSAGE_SIZE = 14
MAX_MESSAGE_SIZE = 65507

PERCENTILE = re.compile(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)")
VALID_DURATION = re.compile(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)")
TOTAL_RUN = re.compile(r"\[Total Run\].*SentMessages=(\d+); ReceivedMessages=(\d+)")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def free_port():
    """A TCP port free right now on loopback: sockperf's server prints no port of its own, so
    it is handed one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_listener(port, process, timeout):
    """True once something accepts on 127.0.0.1:port; False if `process` exits or `timeout`
    seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def ping_pong_command(sockperf, transport, port, sockets, seconds, size, workdir, full_rtt=False):
    """`sockperf ping-pong` against 127.0.0.1:port over "tcp" or "udp" for `seconds` (whole
    seconds: its -t). More than one socket: a feed file in `workdir` naming the server once per
    socket (-f). The client takes those sockets in turn, in one thread: it sends on one, waits
    for the reply, then moves to the next, so one message is in flight however many sockets
    there are. Without `full_rtt` sockperf reports half the round trip as its latency."""
    if sockets > 1:
        feed = os.path.join(workdir, "sockperf-client.feed")
        with open(feed, "w") as out:
            out.write(f"{'T' if transport == 'tcp' else 'U'}:127.0.0.1:{port}\n" * sockets)
        target = ["-f", feed]
    else:
        target = (["--tcp"] if transport == "tcp" else []) + ["-i", "127.0.0.1", "-p", str(port)]
    return ([sockperf, "ping-pong", *target, "-t", str(seconds), "-m", str(size)]
            + (["--full-rtt"] if full_rtt else []))


def parse_summary(text):
    """The message rate over the run's valid window ("[Valid Duration]": warm-up excluded), its
    latency percentiles (µs, half or full round trip as the client was asked), and the whole
    run's counts; None when the summary has no valid window."""
    clean = COLOUR.sub("", text)
    valid = VALID_DURATION.search(clean)
    if not valid or float(valid.group(1)) <= 0:
        return None
    runtime, received = float(valid.group(1)), int(valid.group(3))
    percentiles = {float(p): float(v) for p, v in PERCENTILE.findall(clean)}
    average = re.search(r"avg-(?:rtt|latency)=([\d.]+)", clean)
    total = TOTAL_RUN.search(clean)
    dropped = re.search(r"# dropped messages = (\d+)", clean)
    return {
        "messages": received,
        "messages_per_s": received / runtime,
        "latency_us": {"mean": float(average.group(1)) if average else None,
                       "p50": percentiles.get(50.0), "p90": percentiles.get(90.0), "p99": percentiles.get(99.0),
                       "p99.9": percentiles.get(99.9), "p99.99": percentiles.get(99.99)},
        "total_sent": int(total.group(1)) if total else None,
        "total_received": int(total.group(2)) if total else None,
        "dropped": int(dropped.group(1)) if dropped else None,
    }


def last_message(text):
    """What sockperf said last in its own name ("sockperf: ..."), for a one-line reason: it
    exits 0 after most errors, and follows an option error with its usage text."""
    lines = COLOUR.sub("", text).strip().splitlines()
    own = [line for line in lines if line.startswith("sockperf:")]
    return (own or lines or [""])[-1]
