"""An echolab-server for the load generator's Python tests: started on `listen` (with
`extra_args`, such as --stats-json FILE, and through `launcher`, such as ip netns exec NS),
its ready line awaited, stopped with SIGTERM (killed if it lingers) on leaving a `with`
block."""
import re
import subprocess

READY = re.compile(r"echolab-server listening (\S+) (\S+)$")


class EchoServer:
    def __init__(self, binary, engine, listen="127.0.0.1:0", extra_args=(), launcher=()):
        self.process = subprocess.Popen([*launcher, binary, "--engine", engine, "--listen", listen, *extra_args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()  # the server prints it at once, or exits
        match = READY.match(line)
        if not match:
            self.process.kill()  # a server that printed something else must not keep us waiting
            self.process.wait()
            err = self.process.stderr.read()
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {err}")
        self.address = match.group(2)
        self.port = int(self.address.rsplit(":", 1)[1])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
