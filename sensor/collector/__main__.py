"""`madoc-collector` / `python -m sensor.collector`."""

import sys

from sensor.collector.cli import main

sys.exit(main())
