"""Thread counts: a thread that first touches torch while a ``cpu_threads`` block is open elsewhere starts with the
block's count (torch's count is per OS thread, seeded from the process's), so the budget must not be read from it.
These pin the bookkeeping that keeps the budget, and what the app's estimate and a second job read from it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import torch

from bat_core.base.device import cpu_threads, thread_budget
from bat_core.training import scheduling


@pytest.fixture
def three_threads() -> Iterator[None]:
    """A process budget of 3, whatever the machine has (any count above 1 would do)."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_new_thread(fn: Callable[[], object]) -> object:
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    return box[0]


def test_a_thread_started_inside_a_block_elsewhere_still_reads_the_budget(three_threads: None) -> None:
    inside, release = threading.Event(), threading.Event()

    def stack() -> None:  # a stack training in its own thread, as scheduling.run trains one
        with cpu_threads(1):
            inside.set()
            release.wait(10)

    trainer = threading.Thread(target=stack)
    trainer.start()
    inside.wait(10)
    try:
        # the effect the bookkeeping is for: this new thread's own count is the block's
        assert _in_new_thread(torch.get_num_threads) == 1
        assert _in_new_thread(thread_budget) == 3
        assert _in_new_thread(scheduling.cpu_workers) == 3
    finally:
        release.set()
        trainer.join()
    assert _in_new_thread(thread_budget) == 3
    assert _in_new_thread(torch.get_num_threads) == 3  # the process's count is the budget again


def test_the_budget_comes_back_whichever_block_closes_last(three_threads: None) -> None:
    """Two stacks in two threads, the second opened while the first lowered the count (so its own "before" is 1) and
    closed last: restoring each thread's "before" left every later thread of the process on one thread."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with cpu_threads(1):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        assert torch.get_num_threads() == 1  # started inside the first block
        with cpu_threads(1):
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _in_new_thread(torch.get_num_threads) == 3
    assert thread_budget() == 3


def test_nested_blocks_restore_the_outer_count(three_threads: None) -> None:
    with cpu_threads(2):
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        assert thread_budget() == 3
    assert torch.get_num_threads() == 3


def test_a_user_limit_is_the_budget() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert thread_budget() == 1
        assert scheduling.cpu_workers() == 1
    finally:
        torch.set_num_threads(before)
