"""Helpers shared by tests: child processes for the app and waiting on HTTP."""

import os
import subprocess
import sys
import threading
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def clean_env(**extra):
    """The process environment without the app's settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONGODB_URI", "REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
                        "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "SECRET_KEY", "JWT_SECRET_KEY",
                        "CLINIC_DEV_STACK", "MONGODB_DB", "REDIS_PREFIX")}
    # A child process is configured as production is: the tests' cheap argon2 profile (allowed
    # only with TESTING, which no environment sets) stays in the test process.
    env.update({k: str(v) for k, v in extra.items() if k != "ARGON2_PROFILE"})
    return env


def wait_http(url, status=200, timeout=60.0, process=None):
    """Poll `url` until it answers `status`; return the last response."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} while waiting for {url}")
        try:
            last = requests.get(url, timeout=3)
            if last.status_code == status:
                return last
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s (last: "
                         f"{last.status_code if last is not None else 'no answer'})")


def start_gunicorn(env, port, workers=2):
    """Start the app under gunicorn in its own process group."""
    cmd = [os.path.join(BIN, "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--timeout", "30", "--graceful-timeout", "5", "wsgi:app"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc, sig=None):
    """Stop a child process and its group."""
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig or signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def save_screenshot(page, name):
    """Save a full-page screenshot into `$SCREENSHOTS` when it names a folder (else do nothing).

    README's pictures are refreshed with `SCREENSHOTS=docs/screenshots ./scripts/test -k browser`;
    an ordinary run leaves the committed files alone.
    """
    folder = os.environ.get("SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, name), full_page=True)


def concurrently(n, func, timeout=120):
    """Run `func(i)` for i in 0..n-1 in n threads released together by a barrier; the results in order."""
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        results[i] = func(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
