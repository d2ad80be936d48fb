"""What a hostile model tries, shipped inside its build (tests/batchjobs/test_sandbox.py writes this
file into the model's zip with TARGETS filled in). Each probe returns what it got ("GOT ...") or
how it was stopped ("denied: ..."); a limit probe says how far it came before the limit stopped it.
Plain Python: it runs inside the model process."""

import json
import os
import resource
import socket
import ssl
import subprocess
import sys

TARGETS = json.loads(os.environ.get("PROBE_TARGETS_JSON", "{}"))  # replaced when the zip is written


def _read(path, size=16, needle=None):
    with open(path, "rb") as handle:
        data = handle.read()
    if needle is not None:
        found = [part for part in data.split(b"\0") if needle.encode() in part]
        if not found:
            raise LookupError(f"no {needle} in it")
        data = found[0]
    return "GOT " + repr(data[:size])


def _write(path):
    with open(path, "w") as handle:
        handle.write("a model was here")
    return "GOT wrote " + path


def _connect(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=2):
        return f"GOT a connection to {host}:{port}"


def _user_namespace():
    """A user namespace of its own, where it would be root (and reach the kernel's namespace code)."""
    code = "import os; os.unshare(os.CLONE_NEWUSER); print('GOT a user namespace of its own')"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or f"denied: {done.stderr.strip().splitlines()[-1][-150:]}"


def _certificates():
    """Not an attack: what a model that calls an outside service over HTTPS needs (with network)."""
    count = ssl.create_default_context().cert_store_stats()["x509_ca"]
    return f"GOT {count} CA certificates" if count else "denied: no CA certificate could be loaded"


FORK_BOMB = """
import os, sys, time
count, children = int(sys.argv[1]), []
try:
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    print(f"GOT {count} processes")
except OSError as exc:
    print(f"denied after {len(children)} processes: {type(exc).__name__}: {exc}")
finally:
    for pid in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
"""


def _fork_bomb(count=10_000):
    """From a small Python process of its own (forking the model process itself, with its
    libraries loaded, takes about 40 ms a fork: a bomb does not need to be fast to be a bomb)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", FORK_BOMB, str(count)], capture_output=True, text=True, timeout=120
    )
    return done.stdout.strip() or f"denied: {done.stderr.strip()[-150:]}"


def _allocate(times=10):
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return "GOT no memory limit at all"
    block = bytearray(times * limit)
    return f"GOT {len(block)} bytes"


def _big_file(size=10 << 30):
    """A 10 GiB file: first sparse (only the file size limit stops it), then written out in its
    home (/tmp in the sandbox, capped), chunk by chunk."""
    home = os.environ.get("HOME", "/tmp")
    sparse = os.path.join(home, "sparse.bin")
    try:
        with open(sparse, "wb") as handle:
            handle.seek(size - 1)
            handle.write(b"x")
        return "GOT a sparse 10 GiB file"
    except OSError as exc:
        first = f"{type(exc).__name__}: {exc}"
    finally:
        if os.path.exists(sparse):
            os.unlink(sparse)
    written, chunk = 0, b"\0" * (16 << 20)
    full = os.path.join(home, "full.bin")
    try:
        with open(full, "wb") as handle:
            while written < size:
                handle.write(chunk)
                written += len(chunk)
        return "GOT 10 GiB written"
    except OSError as exc:
        return f"denied: sparse: {first}; written: stopped at {written >> 20} MiB: {type(exc).__name__}: {exc}"
    finally:
        if os.path.exists(full):
            os.unlink(full)


def run():
    """Every probe TARGETS asks for: {name: result}."""
    t = TARGETS
    probes = {
        "secret_key": lambda: _read(t["secret_key"], 5),
        "aws_credentials": lambda: _read(t["aws_credentials"]),
        "other_team_table": lambda: _read(t["other_team_table"], 4),
        "other_job_staging": lambda: _read(t["other_job_staging"], 4),
        "worker_environ": lambda: _read(f"/proc/{t['worker_pid']}/environ", 40, needle="DATABASE_URL"),
        "init_environ": lambda: _read("/proc/1/environ", 40, needle="DATABASE_URL"),
        "write_data_dir": lambda: _write(t["write_outside"]),
        "write_table_folder": lambda: _write(os.path.join(os.path.dirname(t["other_team_table"]), "x.parquet")),
        "write_own_build": lambda: _write(os.path.join(os.path.dirname(__file__), "patched.py")),
    }
    if t.get("database_file"):
        probes["database_file"] = lambda: _read(t["database_file"], 16)
    for port in t["ports"]:
        probes[f"connect_{port}"] = lambda port=port: _connect(port)
    probes["connect_by_name"] = lambda: _connect(t["ports"][-1], "localhost")  # the listener, by its name
    probes["user_namespace"] = _user_namespace
    if t.get("network"):
        probes["ca_certificates"] = _certificates
    if t.get("limits"):
        probes |= {"fork_10000": _fork_bomb, "allocate_10x": _allocate, "write_10_gib": _big_file}
    results = {}
    for name, probe in probes.items():
        try:
            results[name] = probe()
        except BaseException as exc:  # noqa: BLE001 - every way of being stopped is a result
            results[name] = f"denied: {type(exc).__name__}: {exc}"[:200]
    return results
