"""``trio_uring.lowlevel`` file-system ops, each compared with its ``os`` twin."""

from __future__ import annotations

import os
import pathlib
import random
import stat

import pytest

from trio_uring import lowlevel

from .lowlevel_helpers import assert_same_error, run

STAT_FIELDS = (
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    "st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
    "st_blksize", "st_blocks", "st_rdev",
)  # fmt: skip


def assert_same_stat(ours: os.stat_result, theirs: os.stat_result) -> None:
    # stat_result's == only compares the first ten items: check every field.
    assert tuple(ours) == tuple(theirs)
    for name in STAT_FIELDS:
        assert getattr(ours, name) == getattr(theirs, name), name


def test_openat_matches_os_open(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        path = tmp_path / "new"
        fd = await lowlevel.openat(path, os.O_CREAT | os.O_WRONLY, 0o640)
        try:
            assert not os.get_inheritable(fd)  # O_CLOEXEC, as os.open adds it
            umask = os.umask(0)
            os.umask(umask)
            assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o640 & ~umask
            assert os.write(fd, b"written") == 7
        finally:
            os.close(fd)
        # str, bytes and PathLike paths, relative to a dir_fd.
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in ("new", b"new", pathlib.Path("new")):
                fd = await lowlevel.openat(name, os.O_RDONLY, dir_fd=dfd)
                assert os.read(fd, 100) == b"written"
                os.close(fd)
        finally:
            os.close(dfd)
        for missing in (str(tmp_path / "nope"), os.fsencode(tmp_path / "nope"), tmp_path / "nope"):
            await assert_same_error(
                lambda p=missing: lowlevel.openat(p, os.O_RDONLY),  # type: ignore[misc]
                lambda p=missing: os.open(p, os.O_RDONLY),  # type: ignore[misc]
            )
        await assert_same_error(
            lambda: lowlevel.openat(tmp_path, os.O_WRONLY), lambda: os.open(tmp_path, os.O_WRONLY)
        )
        await assert_same_error(
            lambda: lowlevel.openat(path, os.O_CREAT | os.O_EXCL),
            lambda: os.open(path, os.O_CREAT | os.O_EXCL),
        )

    run(main)


def test_statx_equals_os_stat_and_lstat(tmp_path: pathlib.Path) -> None:
    rng = random.Random(7)

    async def main() -> None:
        regular = tmp_path / "file"
        regular.write_bytes(rng.randbytes(12345))
        os.utime(regular, ns=(1_234_567_891_123_456_789, 1_600_000_000_987_654_321))
        link = tmp_path / "link"
        link.symlink_to(regular)
        for path in (regular, tmp_path, "/dev/null", str(link), os.fsencode(link)):
            assert_same_stat(await lowlevel.statx(path), os.stat(path))
        assert_same_stat(await lowlevel.statx(link, follow_symlinks=False), os.lstat(link))
        assert stat.S_ISLNK((await lowlevel.statx(link, follow_symlinks=False)).st_mode)
        assert (await lowlevel.statx("/dev/null")).st_rdev != 0  # a device number
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert_same_stat(await lowlevel.statx("file", dir_fd=dfd), os.stat(regular))
            # An fd as the path: os.stat(fd) (fstat).
            assert_same_stat(await lowlevel.statx(dfd), os.stat(dfd))
        finally:
            os.close(dfd)
        missing = tmp_path / "missing"
        await assert_same_error(lambda: lowlevel.statx(missing), lambda: os.stat(missing))
        await assert_same_error(
            lambda: lowlevel.statx(str(regular) + "/x"), lambda: os.stat(str(regular) + "/x")
        )
        await assert_same_error(lambda: lowlevel.statx(dfd), lambda: os.stat(dfd))  # closed
        fd = os.open(regular, os.O_RDONLY)
        try:
            await assert_same_error(
                lambda: lowlevel.statx(fd, follow_symlinks=False),
                lambda: os.stat(fd, follow_symlinks=False),
            )
            await assert_same_error(
                lambda: lowlevel.statx(fd, dir_fd=fd), lambda: os.stat(fd, dir_fd=fd)
            )
        finally:
            os.close(fd)

    run(main)


def test_fsync_fdatasync_fallocate(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
        try:
            os.write(fd, b"abc")
            await lowlevel.fsync(fd)
            await lowlevel.fdatasync(fd)
            await lowlevel.fallocate(fd, 0, 0, 65536)
            assert os.fstat(fd).st_size == 65536
            assert os.pread(fd, 4, 0) == b"abc\0"
            other = os.open(tmp_path / "g", os.O_CREAT | os.O_RDWR)
            try:
                await assert_same_error(
                    lambda: lowlevel.fallocate(fd, 0, 0, 0),
                    lambda: os.posix_fallocate(other, 0, 0),
                )
                await assert_same_error(
                    lambda: lowlevel.fallocate(fd, 0, -1, 10),
                    lambda: os.posix_fallocate(other, -1, 10),
                )
            finally:
                os.close(other)
            with pytest.raises(ValueError, match="negative value for 'length' not allowed"):
                await lowlevel.fallocate(fd, 0, 0, -1)
        finally:
            os.close(fd)
        r, w = os.pipe()
        try:
            await assert_same_error(lambda: lowlevel.fsync(r), lambda: os.fsync(r))
        finally:
            os.close(r)
            os.close(w)
        await assert_same_error(lambda: lowlevel.fdatasync(r), lambda: os.fdatasync(r))

    run(main)


def test_mkdirat_unlinkat_renameat_match_os(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        d = tmp_path / "d"
        await lowlevel.mkdirat(d, 0o750)
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o750 & ~umask
        await assert_same_error(lambda: lowlevel.mkdirat(d), lambda: os.mkdir(d))
        (d / "f").write_bytes(b"x")
        await assert_same_error(lambda: lowlevel.unlinkat(d), lambda: os.unlink(d))
        await assert_same_error(lambda: lowlevel.unlinkat(d, rmdir=True), lambda: os.rmdir(d))
        await lowlevel.renameat(d / "f", tmp_path / "moved")
        assert (tmp_path / "moved").read_bytes() == b"x"
        await assert_same_error(
            lambda: lowlevel.renameat(d / "f", tmp_path / "x"),
            lambda: os.rename(d / "f", tmp_path / "x"),
        )
        # RENAME_NOREPLACE (renameat2 flag 1): the error names both paths.
        (tmp_path / "other").write_bytes(b"y")
        with pytest.raises(FileExistsError) as info:
            await lowlevel.renameat(tmp_path / "moved", tmp_path / "other", flags=1)
        assert (info.value.filename, info.value.filename2) == (
            str(tmp_path / "moved"),
            str(tmp_path / "other"),
        )
        # dir_fd forms.
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            await lowlevel.mkdirat("sub", dir_fd=dfd)
            await lowlevel.renameat("moved", "sub/m", src_dir_fd=dfd, dst_dir_fd=dfd)
            assert os.listdir(tmp_path / "sub") == ["m"]
            await lowlevel.unlinkat("sub/m", dir_fd=dfd)
            await lowlevel.unlinkat("sub", dir_fd=dfd, rmdir=True)
        finally:
            os.close(dfd)
        await lowlevel.unlinkat(tmp_path / "other")
        await lowlevel.unlinkat(d, rmdir=True)
        assert sorted(os.listdir(tmp_path)) == []
        await assert_same_error(lambda: lowlevel.unlinkat(d), lambda: os.unlink(d))

    run(main)


def test_splice_matches_os_splice(tmp_path: pathlib.Path) -> None:
    rng = random.Random(5)
    content = rng.randbytes(5000)

    async def main() -> None:
        path = tmp_path / "src"
        path.write_bytes(content)
        fd = os.open(path, os.O_RDONLY)
        r, w = os.pipe()
        try:
            # From a file offset into a pipe: the file position stays put.
            assert await lowlevel.splice(fd, 1000, w, None, 300) == 300
            assert os.read(r, 1000) == content[1000:1300]
            assert os.lseek(fd, 0, os.SEEK_CUR) == 0
            # Offset None: from (and advancing) the file position.
            assert await lowlevel.splice(fd, None, w, None, 10) == 10
            assert os.read(r, 100) == content[:10]
            assert os.lseek(fd, 0, os.SEEK_CUR) == 10
            # Pipe to file at an offset.
            out = os.open(tmp_path / "dst", os.O_CREAT | os.O_RDWR)
            try:
                os.write(w, b"spliced!")
                assert await lowlevel.splice(r, None, out, 4, 100) == 8
                assert os.pread(out, 20, 0) == b"\0\0\0\0spliced!"
            finally:
                os.close(out)
            # Errors as os.splice: an offset on a pipe, neither fd a pipe.
            await assert_same_error(
                lambda: lowlevel.splice(r, 0, w, None, 1),
                lambda: os.splice(r, w, 1, offset_src=0),
            )
            await assert_same_error(
                lambda: lowlevel.splice(fd, 0, fd, 0, 1),
                lambda: os.splice(fd, fd, 1, offset_src=0, offset_dst=0),
            )
            await assert_same_error(
                lambda: lowlevel.splice(fd, -5, w, None, 1),
                lambda: os.splice(fd, w, 1, offset_src=-5),
            )
            with pytest.raises(ValueError, match="negative value for 'nbytes'"):
                await lowlevel.splice(fd, None, w, None, -1)
            with pytest.raises(ValueError, match="SPLICE_F_FD_IN_FIXED"):
                await lowlevel.splice(fd, None, w, None, 1, 1 << 31)
        finally:
            for x in (fd, r, w):
                os.close(x)

    run(main)
