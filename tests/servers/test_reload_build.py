"""servers.building_beside_the_loop: what a reload changes in the process while it compiles the new index
beside the event loop, and that it puts everything back (benchmarks/bench_reload.py measures the answers)."""

from __future__ import annotations

import gc
import sys

import pytest

from typoguard.servers import RELOAD_SWITCH_INTERVAL, building_beside_the_loop


@pytest.fixture(autouse=True)
def _restored() -> object:
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    yield
    sys.setswitchinterval(interval)
    (gc.enable if enabled else gc.disable)()


def test_the_loop_gets_the_gil_sooner_and_no_collection_walks_the_new_index_meanwhile() -> None:
    gc.enable()
    sys.setswitchinterval(0.005)
    with building_beside_the_loop():
        assert sys.getswitchinterval() == pytest.approx(RELOAD_SWITCH_INTERVAL)
        assert not gc.isenabled()
    assert sys.getswitchinterval() == pytest.approx(0.005)
    assert gc.isenabled()


def test_a_failed_build_puts_everything_back_too() -> None:
    gc.enable()
    sys.setswitchinterval(0.005)
    with pytest.raises(ValueError), building_beside_the_loop():
        raise ValueError("the config could not be built")
    assert sys.getswitchinterval() == pytest.approx(0.005) and gc.isenabled()


def test_a_collector_switched_off_by_the_operator_stays_off_and_a_shorter_interval_stays() -> None:
    gc.disable()
    sys.setswitchinterval(0.0002)
    with building_beside_the_loop():
        assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
    assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)


def test_overlapping_builds_put_the_settings_back_when_the_last_one_ends() -> None:
    """The policy service and a companion may reload at once; whatever the order they end in, the process
    gets its own settings back (not a build's) when both have."""
    gc.enable()
    sys.setswitchinterval(0.005)
    first, second = building_beside_the_loop(), building_beside_the_loop()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(RELOAD_SWITCH_INTERVAL)
    second.__exit__(None, None, None)
    assert gc.isenabled() and sys.getswitchinterval() == pytest.approx(0.005)


def test_sighups_during_a_reload_make_exactly_one_more_after_it() -> None:
    import asyncio

    from typoguard.servers import Reloads

    started: list[int] = []

    async def scenario() -> None:
        gate = asyncio.Event()

        async def reload() -> None:
            started.append(len(started))
            if len(started) == 1:
                await gate.wait()  # the first reload is still building
                raise RuntimeError("a bug in the first reload")

        reloads = Reloads(reload)
        reloads.request()
        await asyncio.sleep(0)
        for _ in range(5):  # five SIGHUPs while it runs
            reloads.request()
        assert started == [0]  # never two at once
        gate.set()
        assert reloads.task is not None
        with pytest.raises(RuntimeError):
            await reloads.task  # the failure is not swallowed ...
        assert started == [0, 1]  # ... and the queued reload ran all the same, once
        reloads.request()  # idle again: a new SIGHUP starts a new one at once
        await reloads.task
        assert started == [0, 1, 2]

    asyncio.run(scenario())
