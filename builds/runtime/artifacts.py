"""Artifacts: where an uploaded build is kept, and how a worker gets a local, unpacked copy.

Stored under ARTIFACTS_URL (a local folder or s3://) at a path derived from the build id only;
the uploaded file's name is never part of a path. Archives are checked before anything is stored
and unpacked safely (no absolute paths, no "..", no links, a size cap).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from pyarrow import fs as pafs

from builds.choices import ArtifactKind

EXTENSIONS = {
    ".zip": ArtifactKind.SOURCE,
    ".tar.gz": ArtifactKind.SOURCE,
    ".tgz": ArtifactKind.SOURCE,
    ".joblib": ArtifactKind.PICKLE,
    ".pkl": ArtifactKind.PICKLE,
    ".pickle": ArtifactKind.PICKLE,
}
ENTRYPOINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$", re.ASCII)
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 20_000
SAMPLE_FILES = ("sample.parquet", "sample.csv")


class ArtifactError(ValueError):
    """The artifact or its entrypoint is unusable; ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def extension_of(filename: str) -> str | None:
    lowered = filename.lower()
    return next((ext for ext in EXTENSIONS if lowered.endswith(ext)), None)


def _storage() -> tuple[pafs.FileSystem, str]:
    filesystem, root = pafs.FileSystem.from_uri(settings.ARTIFACTS_URL)
    return filesystem, root.rstrip("/")


def _archive_names(path: Path, ext: str) -> list[str]:
    """Member file names of an archive, refusing anything that could escape its folder."""
    try:
        if ext == ".zip":
            with zipfile.ZipFile(path) as archive:
                infos = [
                    (i.filename, i.file_size, i.is_dir(), (i.external_attr >> 16) & 0o170000 == 0o120000)
                    for i in archive.infolist()
                ]
        else:
            with tarfile.open(path, "r:gz") as archive:
                infos = [(m.name, m.size, m.isdir(), not (m.isfile() or m.isdir())) for m in archive.getmembers()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ArtifactError("artifact", f"the file is not a readable {ext} archive ({exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise ArtifactError("artifact", f"the archive has more than {MAX_MEMBERS:,} entries")
    if sum(size for _, size, _, _ in infos) > MAX_UNPACKED_BYTES:
        raise ArtifactError("artifact", f"the archive unpacks to more than {MAX_UNPACKED_BYTES // 1024**3} GiB")
    names = []
    for name, _, is_dir, is_special in infos:
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ArtifactError("artifact", f"the archive entry {name!r} points outside the archive")
        if is_special:
            raise ArtifactError("artifact", f"the archive entry {name!r} is a link or device; only files are allowed")
        if not is_dir:
            names.append(str(PurePosixPath(*parts)) if parts else name)
    return names


def check_entrypoint(entrypoint: str, names: list[str]) -> None:
    if not ENTRYPOINT.match(entrypoint or ""):
        raise ArtifactError("entrypoint", "the entrypoint must look like module.path:ClassName")
    module = entrypoint.split(":")[0].replace(".", "/")
    candidates = (f"{module}.py", f"{module}/__init__.py")
    if not any(c in names for c in candidates):
        raise ArtifactError(
            "entrypoint", f"the module of the entrypoint is not in the archive (looked for {candidates[0]})"
        )


@dataclass
class StoredArtifact:
    kind: str
    path: str
    size: int
    sha256: str


def store(*, build_id: str, upload: IO[bytes], filename: str, entrypoint: str) -> StoredArtifact:
    """Check an uploaded artifact and copy it under ARTIFACTS_URL; raise ArtifactError if unusable."""
    ext = extension_of(filename)
    if ext is None:
        raise ArtifactError(
            "artifact", "the artifact must be a .zip or .tar.gz of Python source, or a .joblib or .pkl file"
        )
    kind = EXTENSIONS[ext]
    with tempfile.NamedTemporaryFile(suffix=ext) as local:
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: upload.read(1 << 20), b""):
            size += len(chunk)
            if size > settings.MAX_ARTIFACT_BYTES:
                raise ArtifactError(
                    "artifact", f"the artifact is larger than {settings.MAX_ARTIFACT_BYTES // 1024**2} MB"
                )
            digest.update(chunk)
            local.write(chunk)
        local.flush()
        if size == 0:
            raise ArtifactError("artifact", "the artifact file is empty")
        if kind == ArtifactKind.SOURCE:
            check_entrypoint(entrypoint, _archive_names(Path(local.name), ext))
        elif entrypoint:
            raise ArtifactError("entrypoint", "a pickled artifact has no entrypoint: leave it empty")
        filesystem, root = _storage()
        relative = f"builds/{build_id}/artifact{ext}"
        filesystem.create_dir(f"{root}/builds/{build_id}", recursive=True)
        local.seek(0)
        with filesystem.open_output_stream(f"{root}/{relative}") as out:
            shutil.copyfileobj(local, out, 1 << 20)
    return StoredArtifact(kind=kind, path=relative, size=size, sha256=digest.hexdigest())


def delete(relative: str) -> None:
    filesystem, root = _storage()
    try:
        filesystem.delete_dir(f"{root}/{PurePosixPath(relative).parent}")
    except (FileNotFoundError, OSError):
        pass


@dataclass
class LocalArtifact:
    kind: str
    path: Path  # the unpacked folder (source) or the file (pickle)
    sample: Path | None


def materialize(*, build_id: str, kind: str, relative: str) -> LocalArtifact:
    """A local, unpacked copy of a build's artifact, made once per machine and then reused."""
    cache = settings.DATA_DIR / "cache" / "builds" / str(build_id)
    ext = extension_of(relative) or ""
    if not cache.exists():
        # Unpack beside the cache folder, then rename: concurrent workers never see half a copy.
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{build_id}-", dir=cache.parent))
        try:
            filesystem, root = _storage()
            local_file = partial / f"artifact{ext}"
            with filesystem.open_input_stream(f"{root}/{relative}") as src, open(local_file, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if kind == ArtifactKind.SOURCE:
                _archive_names(local_file, ext)  # re-check: the stored copy is what gets unpacked
                if ext == ".zip":
                    with zipfile.ZipFile(local_file) as archive:
                        archive.extractall(partial / "src")  # noqa: S202 - every name checked above
                else:
                    with tarfile.open(local_file, "r:gz") as archive:
                        archive.extractall(partial / "src", filter="data")
                local_file.unlink()
            partial.rename(cache)
        except OSError:
            if not cache.exists():
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    if kind == ArtifactKind.SOURCE:
        src_dir = cache / "src"
        sample = next((src_dir / name for name in SAMPLE_FILES if (src_dir / name).is_file()), None)
        return LocalArtifact(kind=kind, path=src_dir, sample=sample)
    return LocalArtifact(kind=kind, path=cache / f"artifact{ext}", sample=None)
