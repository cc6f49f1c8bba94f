"""``python -m gateway.sim call ...``: the simulator's CLI without the rest of the gateway."""

import sys

from gateway.sim.cli import main

sys.exit(main())
