from __future__ import annotations

import gc

from sensor import gcpolicy


def test_settle_freezes_what_lives_and_collects_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        gcpolicy.settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == gcpolicy.GEN0_THRESHOLD
        assert gc.get_threshold()[1:] == threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
