"""`python -m sensor` is `madoc-sensor`."""

import sys

from sensor.cli import main

sys.exit(main())
