"""The model process: clean environment, captured output, and faults that never kill the caller."""

import os
import textwrap
import time

import pytest

from builds.runtime import sandbox, starter
from builds.runtime.process import Limits, ModelProcess, ModelProcessError, child_environment, env_name_error

MODEL = """
import os, sys
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

class M(Model):
    def schema(self):
        return ModelSchema([Feature("amount", "float")], [Prediction("score", "float")])

    def predict(self, df):
{body}
"""


def start(tmp_path, body: str, *, env=None, memory_mb=0, log_cap=1 << 20, **options) -> ModelProcess:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "m.py").write_text(MODEL.replace("{body}", textwrap.indent(textwrap.dedent(body), " " * 8)))
    process = ModelProcess(
        env=env or {}, workdir=tmp_path / "work", memory_mb=memory_mb, log_cap=log_cap, **options
    ).start()
    path = process.provide_build(src)
    process.call({"op": "load", "kind": "source", "path": str(path), "entrypoint": "m:M"}, timeout=60)
    return process


SANDBOXES = [None] + ([sandbox.Sandbox(bwrap=sandbox.bwrap_path())] if sandbox.bwrap_path() else [])


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_a_model_past_its_cpu_time_is_stopped_with_the_reason(tmp_path, made):
    """CPU time is counted over all its threads, whatever the wall clock says."""
    with start(tmp_path, "while True: pass", sandbox=made, limits=Limits(cpu_seconds=4)) as process:
        with pytest.raises(ModelProcessError, match=r"used up its CPU time \(4 CPU seconds\).*SIGXCPU"):
            process.call({"op": "verify"}, timeout=60)


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_a_model_cannot_write_a_file_past_the_size_limit(tmp_path, made):
    body = """
    with open(os.path.join(os.environ["HOME"], "big.bin"), "wb") as handle:
        handle.write(bytes(3 << 20))
    """
    with start(tmp_path, body, sandbox=made, limits=Limits(file_mb=2)) as process:
        with pytest.raises(ModelProcessError, match="File too large"):
            process.call({"op": "verify"}, timeout=60)
        assert process.alive  # a denied write is the model's error, not its end


def test_the_model_sees_its_config_variables_and_nothing_of_the_platform(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/prod")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "django-secret")
    body = """
    print("ENV=" + ",".join(sorted(os.environ)))
    print("THRESHOLD=" + os.environ["THRESHOLD"])
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body, env={"THRESHOLD": "0.7"}) as process:
        reply = process.call({"op": "verify"}, timeout=60)
    assert "THRESHOLD=0.7" in reply.log
    names = reply.log.split("ENV=")[1].splitlines()[0].split(",")
    assert "THRESHOLD" in names
    assert not {"DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE"} & set(names)


def test_reserved_and_malformed_variable_names_never_reach_the_model(tmp_path):
    env = child_environment({"PATH": "/evil", "LD_PRELOAD": "x.so", "PYTHONPATH": "/evil", "lower": "1"}, tmp_path)
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert "LD_PRELOAD" not in env and "PYTHONPATH" not in env and "lower" not in env
    assert "capital letters" in env_name_error("lower")
    assert "reserved" in env_name_error("PYTHONHOME")
    assert env_name_error("FRAUD_THRESHOLD") is None


def test_a_model_exception_is_reported_with_its_traceback_and_the_process_lives_on(tmp_path):
    body = """
    print("about to fail")
    raise ValueError("amount must be positive")
    """
    with start(tmp_path, body) as process:
        with pytest.raises(ModelProcessError, match="ValueError: amount must be positive") as failure:
            process.call({"op": "verify"}, timeout=60)
        assert "about to fail" in failure.value.log
        assert 'raise ValueError("amount must be positive")' in failure.value.traceback
        assert "runtime/child.py" not in failure.value.traceback
        assert process.alive


def test_a_fault_of_the_platform_itself_keeps_every_frame():
    from builds.runtime import child

    try:
        child._handle({"op": "no-such-op"})
    except ValueError as exc:
        report = child._error_reply(exc)
    assert report["error"] == "ValueError: unknown request 'no-such-op'"
    assert report["traceback"].count("runtime/child.py") >= 1 and "in _handle" in report["traceback"]


def test_sys_exit_in_the_model_is_a_reported_error(tmp_path):
    with start(tmp_path, "sys.exit(3)") as process:
        with pytest.raises(ModelProcessError, match=r"the model called sys.exit\(3\)"):
            process.call({"op": "verify"}, timeout=60)
        assert process.alive


def test_a_hard_crash_names_the_exit_code(tmp_path):
    with start(tmp_path, "os._exit(7)") as process:
        with pytest.raises(ModelProcessError, match="exited with code 7"):
            process.call({"op": "verify"}, timeout=60)


def test_a_hang_is_stopped_at_the_timeout(tmp_path):
    with start(tmp_path, "import time; time.sleep(120)") as process:
        with pytest.raises(ModelProcessError, match="did not answer within 1 s"):
            process.call({"op": "verify"}, timeout=1)
        assert not process.alive


def test_memory_past_the_limit_fails_the_request(tmp_path):
    body = """
    hog = bytearray(3 * 1024**3)
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body, memory_mb=1024) as process:
        with pytest.raises(ModelProcessError, match="MemoryError"):
            process.call({"op": "verify"}, timeout=60)


def test_output_is_capped_with_a_truncated_marker(tmp_path):
    body = """
    sys.stdout.write("x" * 5_000_000)
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body, log_cap=10_000) as process:
        reply = process.call({"op": "verify"}, timeout=60)
        assert len(reply.log) < 11_000
        assert "[truncated: 4,990,000 more bytes" in reply.log
        # The next request's output is captured on its own.
        again = process.call({"op": "verify"}, timeout=60)
        assert again.log.startswith("x")


def test_the_child_process_holds_no_platform_variables_even_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://secret")
    process = ModelProcess(env={}, workdir=tmp_path).start()
    try:
        with open(f"/proc/{process.proc.pid}/environ", "rb") as handle:
            names = {item.split(b"=")[0].decode() for item in handle.read().split(b"\0") if item}
    finally:
        process.close()
    assert "CELERY_BROKER_URL" not in names
    assert names <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        *[k for k in os.environ if k.startswith("OPENBLAS")],
        "TZ",
    }


def test_the_worker_hides_its_environment_from_the_model_processes_it_starts(tmp_path):
    from builds.runtime.process import PR_GET_DUMPABLE, _prctl

    with start(tmp_path, 'return pd.DataFrame({"score": df["amount"]})') as process:
        assert process.alive
        assert _prctl(PR_GET_DUMPABLE) == 0  # /proc/<worker>/environ is closed to same-user processes
        with open(f"/proc/{process.proc.pid}/status") as status:
            assert "NoNewPrivs:\t1" in status.read()


@pytest.mark.skipif(os.geteuid() == 0, reason="root's children may read any process's files")
def test_the_model_cannot_read_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKER_SECRET", "hunter2")
    body = """
    try:
        secret = open(f"/proc/{os.getppid()}/environ").read()
    except OSError as exc:
        secret = f"refused: {exc}"
    print(secret)
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body) as process:
        reply = process.call({"op": "verify"}, timeout=60)
    assert "hunter2" not in reply.log and "refused" in reply.log


def test_a_process_past_half_its_cpu_time_is_worn_out_so_the_next_batch_gets_a_new_one(tmp_path):
    body = """
    import time
    while time.process_time() < 4.5:
        pass
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body, limits=Limits(cpu_seconds=8)) as process:
        assert not starter.worn_out(process)  # loading took a second or two of its 8
        process.call({"op": "verify"}, timeout=60)
        assert starter.worn_out(process) and process.alive


CHILDREN = """
import subprocess, time
work = {work!r}
children = [subprocess.Popen([sys.executable, "-I", "-S", "-c", work]) for _ in range(3)]
time.sleep(50)
return pd.DataFrame({{"score": df["amount"]}})
"""


def children_of_the_test() -> list:
    import psutil

    marked = [p for p in psutil.process_iter(["cmdline"]) if "a child of the model" in str(p.info["cmdline"])]
    return marked


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_the_memory_of_a_models_processes_is_counted_together(tmp_path, made):
    """Each of three children stays within the model's 600 MiB, which the kernel counts per
    process; together they hold 750 MiB more, and the worker stops them all."""
    work = "import time; hold = bytearray(250 << 20); time.sleep(60)  # a child of the model"
    with start(tmp_path, CHILDREN.format(work=work), sandbox=made, memory_mb=600) as process:
        began = time.monotonic()
        with pytest.raises(ModelProcessError, match=r"processes used [\d,]+ MiB of memory together, more than its 600"):
            process.call({"op": "verify"}, timeout=60)
        assert time.monotonic() - began < 40  # stopped when it went over, not at the call's timeout
        assert not process.alive
    wait_until_gone = time.monotonic() + 5
    while children_of_the_test() and time.monotonic() < wait_until_gone:
        time.sleep(0.1)
    assert not children_of_the_test()


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_the_cpu_time_of_a_models_processes_is_counted_together(tmp_path, made):
    """Three spinning children, each under the 8 CPU seconds the kernel gives every process: the
    worker stops them when their sum (with the model's own) passes it."""
    work = "while True: pass  # a child of the model"
    with start(tmp_path, CHILDREN.format(work=work), sandbox=made, limits=Limits(cpu_seconds=8)) as process:
        with pytest.raises(ModelProcessError, match=r"processes used [\d,]+ CPU seconds together, more than its 8"):
            process.call({"op": "verify"}, timeout=60)
        assert not process.alive
    wait_until_gone = time.monotonic() + 5
    while children_of_the_test() and time.monotonic() < wait_until_gone:
        time.sleep(0.1)
    assert not children_of_the_test()


def test_the_cpu_time_of_children_that_ended_counts_too(tmp_path):
    """Children that each spin for a second and end, three at a time, never live long enough to
    be seen running at their limit: the time they used is counted once they end."""
    body = """
    import subprocess, time
    spin = "import time\\nstart = time.process_time()\\nwhile time.process_time() - start < 1: pass"
    while True:
        for child in [subprocess.Popen([sys.executable, "-I", "-S", "-c", spin]) for _ in range(3)]:
            child.wait()
    """
    with start(tmp_path, body, limits=Limits(cpu_seconds=8)) as process:
        with pytest.raises(ModelProcessError, match=r"CPU seconds together, more than its 8"):
            process.call({"op": "verify"}, timeout=60)


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_a_child_that_renames_itself_bwrap_is_still_counted(tmp_path, made):
    """Which processes count is decided by their place under the model, not by the name a
    process gives itself (model code can set its own)."""
    work = (
        "open('/proc/self/comm', 'w').write('bwrap'); import time; hold = bytearray(250 << 20); "
        "time.sleep(60)  # a child of the model"
    )
    with start(tmp_path, CHILDREN.format(work=work), sandbox=made, memory_mb=600) as process:
        with pytest.raises(ModelProcessError, match=r"MiB of memory together, more than its 600"):
            process.call({"op": "verify"}, timeout=60)


DOUBLE_FORK = """
import os, time
start = time.process_time()
for _ in range(8):  # orphans that spin a second each and end: their time lands on their new parent
    if os.fork() == 0:
        if os.fork() == 0:
            begun = time.process_time()
            while time.process_time() - begun < 1:
                pass
        os._exit(0)
    os.wait()
    time.sleep(1.2)
time.sleep(50)
return pd.DataFrame({"score": df["amount"]})
"""


@pytest.mark.skipif(not SANDBOXES[-1:] or SANDBOXES[-1] is None, reason="needs bubblewrap")
def test_orphans_cpu_time_counts_in_the_sandbox(tmp_path):
    """A double-forked child is adopted by the sandbox's init (its own PID namespace): when it
    ends, its time is still the model's. (Without a sandbox, orphans go to the system's init.)"""
    with start(tmp_path, DOUBLE_FORK, sandbox=SANDBOXES[-1], limits=Limits(cpu_seconds=8)) as process:
        with pytest.raises(ModelProcessError, match=r"CPU seconds together, more than its 8"):
            process.call({"op": "verify"}, timeout=60)


@pytest.mark.parametrize("made", SANDBOXES, ids=lambda made: "sandboxed" if made else "plain")
def test_forked_children_sharing_the_models_memory_count_it_once(tmp_path, made):
    """Twelve forks of the model share its pages: their RSS adds up past its 600 MiB, their PSS
    does not, and the model runs on."""
    import threading

    import psutil

    body = """
    import time
    children = []
    for _ in range(12):
        pid = os.fork()
        if pid == 0:
            time.sleep(1.5)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return pd.DataFrame({"score": df["amount"]})
    """
    with start(tmp_path, body, sandbox=made, memory_mb=600, limits=Limits(cpu_seconds=60)) as process:
        peak, done = [0], threading.Event()

        def sample():
            while not done.wait(0.1):
                rss = 0
                for child in process._processes():
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss >> 20)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            process.call({"op": "verify"}, timeout=60)
        finally:
            done.set()
            sampler.join()
        assert process.alive
    assert peak[0] > 600  # RSS alone would have stopped it
