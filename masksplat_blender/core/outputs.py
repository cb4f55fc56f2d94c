"""The one guard every output of a command goes through: checked first, written aside, published as a set.

A command declares its inputs and every output (a file, or a folder of files) before it
writes anything; each output is checked at once:

- it is never an input, whatever the path says (symbolic links, hard links and `../`
  aliases are caught by comparing devices and inodes, with every file in an input folder);
- an existing output is replaced only with `overwrite`, and only a regular file (never a
  folder, a device or a pipe); a folder given where a file is expected, or a file where a
  folder is, is said so;
- its folder exists and can be written to; two outputs never name the same file.

Writers write to temporary paths beside the outputs (the same name behind a hidden
prefix, so a writer that picks the format from the extension still sees it). `publish()`
then moves every output into place: without `overwrite` each is created exclusively
(`os.link`, which fails when the name exists, so two runs racing for one new name cannot
both win); replaced files are kept aside until the whole set is in place. A failure or a
cancel while publishing puts the old files back: afterwards there is either the old set
or the new one, never a mix, and no temporary is left behind (`discard`).

`atomic_file` is the single-file form (splat writers use it): complete or absent, never half.
stdlib only: batch jobs and operators share it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import interrupts
from .errors import BadInput, MaskSplatError

PREFIX = ".masksplat-"  # temporaries and kept-aside files: hidden, and easy to recognise
INPUT_FOLDER_DEPTH = 3  # files this deep in an input folder (a COLMAP dataset root) count as inputs
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS, errno.EMLINK}


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def input_keys(paths) -> set[tuple[int, int]]:
    """(device, inode) of every input file: each path, and the files in an input folder."""
    keys = set()
    for raw in paths:
        if not raw:
            continue
        path = Path(raw)
        try:
            keys.add(_key(path.stat()))
        except OSError:
            continue
        if path.is_dir():
            base = len(path.parts)
            for folder, subfolders, files in os.walk(path):
                if len(Path(folder).parts) - base >= INPUT_FOLDER_DEPTH:
                    subfolders.clear()
                for name in files:
                    with contextlib.suppress(OSError):
                        keys.add(_key(os.stat(os.path.join(folder, name))))
    return keys


@dataclass
class Output:
    """One output file: where it ends up (`path`) and where its writer writes it (`temp`)."""

    path: Path
    temp: Path
    what: str
    overwrite: bool = False

    @contextmanager
    def writing(self):
        """Write the output: yields the temporary path to write it to (its folder made, for a
        folder that does not exist yet). A failure to write (a full disk, a file size limit)
        is said as such, naming the output rather than the temporary."""
        try:
            self.temp.parent.mkdir(exist_ok=True)
            yield self.temp
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
            raise MaskSplatError(f"cannot write {self.what} {self.path} ({reason}): is the disk full?") from err


class OutputFolder:
    """A folder of output files (e.g. a PNG per camera); created on publish if it is missing."""

    def __init__(self, owner: OutputSet, path: Path, what: str):
        self.owner, self.path, self.what = owner, path, what
        self.exists = path.is_dir()
        self.staging = path if self.exists else path.parent / f"{PREFIX}{owner.token}-{path.name}"

    def file(self, name: str) -> Output:
        """Check one file of the folder (a plain file name) and return its Output."""
        if not name or Path(name).name != name or name in (".", ".."):
            raise BadInput(f"{name!r} is not a plain file name for {self.what} {self.path}")
        return self.owner._add(self.path / name, self.what, self.staging, None)


class OutputSet:
    """All outputs of one command. Use as a context manager: leaving it by an exception
    removes every temporary; call `publish()` when the whole set is written."""

    def __init__(self, inputs=(), overwrite: bool = False):
        self.overwrite = overwrite
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._outputs: list[Output] = []
        self._folders: list[OutputFolder] = []
        self._inputs = input_keys(inputs)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def file(self, path, what: str, overwrite: bool | None = None) -> Output:
        """Check an output file (`what` names it in messages, e.g. "--out") and return its Output.
        `overwrite` overrides the set's for this file (a job of `segment --jobs`)."""
        text = str(path)
        if not text:
            raise BadInput(f"{what}: no file name given")
        if text.endswith(("/", os.sep)):
            raise BadInput(f"{what} {text} names a folder; give a file name")
        return self._add(Path(os.path.abspath(text)), what, None, overwrite)

    def folder(self, path, what: str) -> OutputFolder:
        """Check an output folder (it may exist; its parent must); add its files with `.file(name)`."""
        if not str(path):
            raise BadInput(f"{what}: no folder given")
        folder = Path(os.path.abspath(str(path)))
        if os.path.lexists(folder) and not folder.is_dir():
            raise BadInput(f"{what} {path} exists and is not a folder")
        if not folder.is_dir():
            self._check_parent(folder, what)
        self._check_not_input(folder, what)
        handle = OutputFolder(self, folder, what)
        self._folders.append(handle)
        return handle

    def _add(self, path: Path, what: str, staging: Path | None, overwrite: bool | None) -> Output:
        if path.is_dir():
            raise BadInput(f"{what} {path} is a folder; give a file name")
        if staging is None or staging.parent == path.parent:
            self._check_parent(path, what)
        for other in self._outputs:
            if _same_place(other.path, path):
                raise BadInput(f"{other.what} and {what} name the same file {path}; give each output its own file")
        self._check_not_input(path, what)
        overwrite = self.overwrite if overwrite is None else overwrite
        if os.path.lexists(path):
            if not overwrite:
                raise BadInput(f"{path} exists; pass --overwrite to replace it")
            if not stat.S_ISREG(os.lstat(path).st_mode) and not (path.is_symlink() and path.is_file()):
                raise BadInput(f"{what} {path} is not a regular file; MaskSplat replaces only files")
        folder = staging if staging is not None else path.parent
        output = Output(path, folder / f"{PREFIX}{self.token}-{len(self._outputs)}-{path.name}", what, overwrite)
        self._outputs.append(output)
        return output

    def _check_parent(self, path: Path, what: str) -> None:
        parent = path.parent
        if not parent.exists():
            raise BadInput(f"{what}: folder {parent} does not exist")
        if not parent.is_dir():
            raise BadInput(f"{what}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BadInput(f"{what}: cannot write to folder {parent}")

    def _check_not_input(self, path: Path, what: str) -> None:
        try:
            key = _key(path.stat())
        except OSError:
            return
        if key in self._inputs:
            raise BadInput(f"{what} {path} is also an input; choose another {'folder' if path.is_dir() else 'file'}")

    def publish(self) -> None:
        """Move every output into place, as one set (see the module docstring)."""
        with interrupts.deferred():
            placed: list[list] = []  # [path, kept-aside file or None, in place yet]
            created: list[Path] = []
            try:
                for folder in self._folders:
                    if not folder.path.is_dir():
                        folder.path.mkdir()
                        created.append(folder.path)
                for output in self._outputs:
                    if not output.temp.is_file():
                        raise MaskSplatError(f"{output.what} {output.path} was not written")
                    placed.append([output.path, self._set_aside(output), False])
                    _place(output.temp, output.path)
                    placed[-1][2] = True
                if interrupts.requested():
                    raise KeyboardInterrupt
            except BaseException:
                _restore(placed, created)
                raise
        for _, aside, _ in placed:
            if aside is not None:
                os.unlink(aside)
        self.discard()

    def _set_aside(self, output: Output) -> Path | None:
        """Move an existing output out of the way (kept until the whole set is in place)."""
        if not os.path.lexists(output.path):
            return None
        if not output.overwrite:
            raise BadInput(f"{output.path} appeared while this command ran; pass --overwrite to replace it")
        aside = output.path.parent / f"{PREFIX}{self.token}-old-{output.path.name}"
        os.replace(output.path, aside)
        return aside

    def discard(self) -> None:
        """Remove every temporary (never an output that is in place)."""
        with interrupts.deferred(reraise=False):
            self._discard()

    def _discard(self) -> None:
        for output in self._outputs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(output.temp)
        for folder in self._folders:
            if folder.staging != folder.path:
                shutil.rmtree(folder.staging, ignore_errors=True)


@contextmanager
def atomic_file(path):
    """A binary handle whose bytes appear at `path` only complete: written to a temporary beside
    it (`.<name>.*.tmp`) and renamed over it; a failure or a cancel removes the temporary (its
    creation is never cut short, so it cannot be left behind)."""
    path = Path(path)
    handle = temp = None
    try:
        with interrupts.deferred():
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
            handle = os.fdopen(fd, "wb")
        with handle:
            yield handle
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
        temp = None
    finally:
        if temp is not None:
            with interrupts.deferred(reraise=False):
                if handle is not None:
                    handle.close()
                os.unlink(temp)


def _same_place(a: Path, b: Path) -> bool:
    return a == b or (a.name == b.name and os.path.realpath(a.parent) == os.path.realpath(b.parent))


def _place(temp: Path, path: Path) -> None:
    """Put `temp` at `path`, which must not exist: created exclusively, complete from the start."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise BadInput(f"{path} appeared while this command ran; pass --overwrite to replace it") from None
    except OSError as err:
        if err.errno not in _NO_LINKS:
            raise
        # No hard links here (some network and FAT file systems): claim the name, then fill it.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise BadInput(f"{path} appeared while this command ran; pass --overwrite to replace it") from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def _restore(placed: list[list], created: list[Path]) -> None:
    """Undo a publish: remove what was placed, put kept-aside files back, remove new folders."""
    for path, aside, in_place in reversed(placed):
        if in_place:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if aside is not None and os.path.lexists(aside):
            os.replace(aside, path)
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()
