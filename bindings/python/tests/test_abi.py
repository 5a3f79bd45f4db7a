"""The ctypes structs match crun's C layouts (crun-libcrun.md §1.3)."""

import ctypes

from crun_rs import _lib


def test_struct_sizes():
    assert ctypes.sizeof(_lib.ErrorStruct) == 16
    assert ctypes.sizeof(_lib.ContextStruct) == 120
    assert ctypes.sizeof(_lib.ContainerStruct) == 80
    assert ctypes.sizeof(_lib.StatusStruct) == 88
    assert ctypes.sizeof(_lib.ContainerList) == 16


def test_field_offsets():
    c = _lib.ContextStruct
    assert c.preserve_fds.offset == 56
    assert c.output_handler.offset == 64
    assert c.fifo_exec_wait_fd.offset == 80
    assert c.systemd_cgroup.offset == 84
    assert c.no_pivot.offset == 88
    assert c.argv.offset == 96
    assert c.handler_manager.offset == 112
    k = _lib.ContainerStruct
    assert k.config_file.offset == 24
    assert k.proc_fd.offset == 48
    assert k.context.offset == 72
    s = _lib.StatusStruct
    assert s.process_start_time.offset == 8
    assert s.systemd_cgroup.offset == 48
    assert s.created.offset == 56
    assert s.detached.offset == 64
    assert s.owner.offset == 80
