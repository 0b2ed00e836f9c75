"""The bridge under test, as a process: started with `serve`, read through /metrics, stopped with
SIGTERM (whose exit status the checker judges)."""
import os, shlex, signal, subprocess, urllib.request

from .keys import bridge_url
from .servers import free_port


def extra_args():
    """FAULTS_BRIDGE_ARGS: arguments added to every bridge the suite starts (scripts/faults
    --bridge-args sets it), so that one run can try options an older build lacks
    (`--redis-command-timeout 3`) without the suite knowing which build it tests."""
    return shlex.split(os.environ.get("FAULTS_BRIDGE_ARGS", ""))


class Bridge:
    def __init__(self, binary, port, log, consumer, extra=(), url=None):
        self.log = open(log, "ab")
        env = dict(os.environ, REDIS_URL=url or bridge_url(port))
        self.http = free_port()
        self.proc = subprocess.Popen(
            [binary, "serve", "--no-auth", "--http-port", str(self.http), "--consumer", consumer,
             "--log-level", "warning", "--claim-idle-ms", "3000"] + list(extra) + extra_args(),
            env=env, stdout=self.log, stderr=self.log, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def refusals(self):
        """taskstatus_redis_refusals_total by reason, read from /metrics."""
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=2).read().decode()
        except OSError:
            return {}
        counts = {}
        for line in body.splitlines():
            if line.startswith("taskstatus_redis_refusals_total{"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                counts[reason] = counts.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
        return counts

    def stop(self):
        """SIGTERM, then the exit status (None if it had to be killed after 20 s)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()
