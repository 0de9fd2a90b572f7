"""Device choice and the process-wide CPU thread count shared by trainer and predictor."""

from __future__ import annotations

import threading

import pytest
import torch

from catdog_gui.core.device import cpu_threads, device_name, pick_device
from catdog_gui.core.errors import CatdogError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def test_auto_picks_what_this_machine_has_and_cpu_is_cpu():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if _mps_available() else "cpu")
    assert pick_device("auto").type == expected
    assert pick_device(None).type == expected and pick_device("AUTO").type == expected
    cpu = pick_device("cpu")
    assert cpu == torch.device("cpu")
    n = torch.get_num_threads()
    assert device_name(cpu) == f"CPU ({n} thread{'s' if n != 1 else ''})"


@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if hasattr(torch.backends, "mps"):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    elif mps:
        pytest.skip("this torch has no torch.backends.mps")
    assert pick_device("auto") == torch.device(expected)


def test_unavailable_device_is_a_user_error():
    if not torch.cuda.is_available():
        with pytest.raises(CatdogError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(CatdogError, match="unknown device"):
        pick_device("tpu9")


def test_nested_blocks_restore_outer_count():
    base = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
        with cpu_threads(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
        with cpu_threads(0):  # 0: leave as is
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == base


def test_overlapping_users_on_two_threads_leave_the_original_count():
    """Trainer and predictor overlapping in any order: the last one out restores the original."""
    base = torch.get_num_threads()
    entered, release_a = threading.Event(), threading.Event()

    def a():  # enters first, leaves last... or first: both orders are run below
        with cpu_threads(1):
            entered.set()
            release_a.wait(10)

    for a_leaves_first in (True, False):
        entered.clear()
        release_a.clear()
        t = threading.Thread(target=a)
        t.start()
        assert entered.wait(10)
        with cpu_threads(3):
            if a_leaves_first:
                release_a.set()
                t.join(10)
        release_a.set()
        t.join(10)
        assert torch.get_num_threads() == base
