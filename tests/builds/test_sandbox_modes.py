"""MODEL_SANDBOX's three modes, and a bubblewrap that cannot make a sandbox on this system."""

import stat

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
def test_a_working_bwrap_gives_a_sandbox_with_no_network_unless_allowed():
    made = sandbox.sandbox_for("auto")
    assert made is not None and not made.allow_network
    argv = made.argv(["python"], workdir=sandbox.REPO_ROOT, build_dir=sandbox.REPO_ROOT)
    assert "--unshare-all" in argv and "--die-with-parent" in argv and "--share-net" not in argv
    assert "--share-net" in sandbox.sandbox_for("auto", allow_network=True).argv(
        ["python"], workdir=sandbox.REPO_ROOT, build_dir=sandbox.REPO_ROOT
    )
