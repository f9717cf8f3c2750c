from __future__ import annotations

import gc

import pytest

from sensor import gcpolicy


@pytest.mark.parametrize("collect", [True, False])
def test_settle_freezes_what_lives_and_collects_less_often(collect: bool) -> None:
    threshold = gc.get_threshold()
    try:
        gcpolicy.settle(collect)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == gcpolicy.GEN0_THRESHOLD
        assert gc.get_threshold()[1:] == threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
