from __future__ import annotations

import gc

import pytest

from sensor.support import gcpolicy


@pytest.mark.parametrize("collect", [True, False])
def test_settle_freezes_what_lives_and_collects_less_often(collect: bool) -> None:
    threshold = gc.get_threshold()
    try:
        gcpolicy.settle(collect)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (gcpolicy.GEN0_THRESHOLD, gcpolicy.GEN1_THRESHOLD,
                                      threshold[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
