"""Loaded with `-p tests.envsetup` before Django: every test run gets its own data dir.

The SQLite test database, artifacts, the local broker's folders and the lake all live there, and a
real worker process started by the tests inherits the same variables, so it sees the same files.
"""

import atexit
import os
import shutil
import tempfile

if "MLPLATFORM_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="mlplatform-test-")
    os.environ["MLPLATFORM_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
