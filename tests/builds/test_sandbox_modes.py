"""MODEL_SANDBOX's three modes, and a bubblewrap that cannot make a sandbox on this system."""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from builds.runtime import sandbox


@pytest.fixture
def broken_bwrap(tmp_path, monkeypatch):
    """A bwrap that fails the way it does where unprivileged user namespaces are forbidden."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: str(fake))
    return fake


def test_off_never_sandboxes_and_a_missing_bwrap_is_refused_only_when_required(monkeypatch):
    assert sandbox.sandbox_for("off") is None
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    assert sandbox.sandbox_for("auto") is None
    with pytest.raises(sandbox.SandboxUnavailable, match="install the bubblewrap package"):
        sandbox.sandbox_for("required")
    with pytest.raises(ValueError, match="auto, required, off"):
        sandbox.sandbox_for("sometimes")


def test_a_bwrap_that_cannot_make_a_sandbox_is_named_in_the_refusal(broken_bwrap, caplog):
    assert sandbox.sandbox_for("auto") is None  # models still run, and the log says why
    assert "setting up uid map: Permission denied" in caplog.text
    with pytest.raises(sandbox.SandboxUnavailable, match="uid map: Permission denied.*user namespaces"):
        sandbox.sandbox_for("required")


@pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap")
@pytest.mark.parametrize("allow_network", [False, True])
def test_a_working_bwrap_gives_a_sandbox_with_no_network_unless_allowed(allow_network, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    made = sandbox.sandbox_for("auto", allow_network=allow_network)
    assert made is not None and made.allow_network is allow_network
    port = server.getsockname()[1]
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')"
    launch = made.launch([sys.executable, "-I", "-c", connect], read_only=[], writable=[], chdir=Path("/tmp"))
    try:
        done = subprocess.run(launch.argv, pass_fds=launch.pass_fds, capture_output=True, text=True, timeout=60)
    finally:
        launch.close()
        server.close()
    if allow_network:
        assert done.stdout.strip() == "connected", done.stderr
    else:
        # Its own network namespace: a loopback of its own, where nothing of the host's listens.
        assert done.returncode != 0 and "ConnectionRefusedError" in done.stderr, done.stderr


@pytest.fixture
def runtime_in_a_closed_home(tmp_path, monkeypatch):
    """A root worker whose Python runtime lives in a folder others cannot read (a home of mode 700)."""
    runtime = tmp_path / "home" / "python"
    runtime.mkdir(parents=True)
    runtime.chmod(0o700)
    monkeypatch.setattr(sandbox, "as_root", lambda: True)
    monkeypatch.setattr(sandbox, "_runtime_dirs", lambda: [str(runtime)])
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/usr/bin/bwrap")
    sandbox.bwrap_refusal.cache_clear()
    yield runtime
    sandbox.bwrap_refusal.cache_clear()


def test_a_runtime_the_sandbox_user_cannot_read_is_named_in_a_clear_error(runtime_in_a_closed_home, caplog):
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        sandbox.sandbox_for("required")
    message = str(refused.value)
    assert f"{runtime_in_a_closed_home} is not readable by other users (mode 0700)" in message
    assert f"chmod -R o+rX {runtime_in_a_closed_home}" in message and "unprivileged user" in message
    assert "Traceback" not in message
    assert sandbox.sandbox_for("auto") is None  # auto runs models without one, and says why
    assert "is not readable by other users" in caplog.text


NESTED = "id -u; unshare -U true && echo 'a user namespace of its own' || echo denied"


@pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap (apt-get install bubblewrap)")
@pytest.mark.skipif(os.geteuid() != 0, reason="becomes nobody with runuser, as an unprivileged worker runs")
@pytest.mark.parametrize("as_root", [True, False], ids=["root worker", "unprivileged worker"])
def test_no_user_namespace_can_be_made_inside_the_sandbox(monkeypatch, tmp_path, as_root):
    """Model code gets no namespace root (and none of the kernel code that opens), whoever runs
    the worker: a root worker's sandbox lives in a namespace whose max_user_namespaces is 0; an
    unprivileged worker's gets bwrap's --disable-userns."""
    monkeypatch.setattr(sandbox, "as_root", lambda: as_root)
    monkeypatch.setattr(sandbox, "_runtime_dirs", lambda: [])  # /bin/sh needs only /usr
    made = sandbox.Sandbox(bwrap=sandbox.bwrap_path())
    launch = made.launch(["/bin/sh", "-c", NESTED], read_only=[], writable=[], chdir=Path("/tmp"))
    argv = launch.argv if as_root else ["runuser", "-u", "nobody", "--", *launch.argv]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, pass_fds=launch.pass_fds)
    finally:
        launch.close()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[-1] == "denied", done.stdout + done.stderr
    assert lines[0] == ("0" if as_root else "65534")  # a root worker's model drops to nobody itself
