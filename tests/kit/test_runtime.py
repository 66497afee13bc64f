"""Process tuning: background threads yield the disk to the acknowledgement path."""

from __future__ import annotations

import ctypes
import platform
import threading

import pytest

from otklik.kit.runtime import background_io

IOPRIO_GET = {"x86_64": 252, "aarch64": 31}


def io_class_of_this_thread() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.syscall(IOPRIO_GET[platform.machine()], 1, 0)) >> 13


@pytest.mark.skipif(platform.machine() not in IOPRIO_GET, reason="ioprio syscall numbers")
def test_a_background_thread_marks_its_disk_io_idle_and_leaves_other_threads_alone() -> None:
    seen: dict[str, int | bool] = {}

    def background() -> None:
        seen["took"] = background_io()
        seen["class"] = io_class_of_this_thread()

    before = io_class_of_this_thread()
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()

    assert seen == {"took": True, "class": 3}  # IOPRIO_CLASS_IDLE
    assert io_class_of_this_thread() == before != 3
