"""The machine a result was measured on, described once for every JSON file echolab writes
(results/schema/host.schema.json). The keys are Google Benchmark's context keys, which
echolab-loadgen's own "context" block uses too, so that any two files can be compared key
by key: host_name, num_cpus, cpu_model, kernel ("Linux 6.1.0-..."), machine, memory_bytes,
python."""
import os
import platform
import socket


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes():
    try:
        with open("/proc/meminfo") as meminfo:
            return int(meminfo.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def host_context():
    uname = platform.uname()
    return {"host_name": socket.gethostname(), "kernel": f"{uname.system} {uname.release}",
            "machine": uname.machine, "cpu_model": _cpu_model(), "num_cpus": os.cpu_count(),
            "memory_bytes": _memory_bytes(), "python": platform.python_version()}
