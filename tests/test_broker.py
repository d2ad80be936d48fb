"""The local broker never hands a consumer a message that is still being written."""

import os

from kombu import Connection

import mlplatform.celery  # noqa: F401  (the app registers the atomic transport for filesystem://)


def test_messages_appear_only_whole(tmp_path, monkeypatch):
    folders = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
    options = {name: str(tmp_path) for name in folders}  # no control/ folder in the working directory
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        assert type(connection.transport).__module__ == "mlplatform.broker"
        queue = connection.SimpleQueue("ml.m5.large")
        seen = []
        real_replace = os.replace

        def check_then_replace(src, dst):
            # While the message is being written, nothing with a consumable name exists.
            seen.append(sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".ml.m5.large.msg")))
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", check_then_replace)
        queue.put({"job": 1})
        monkeypatch.undo()
        assert seen == [[]]
        assert queue.get(timeout=1).payload == {"job": 1}
        queue.close()
