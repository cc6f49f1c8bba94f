"""``python -m gateway.campaigns``: the campaign commands on their own."""

import sys

from gateway.campaigns.cli import main

sys.exit(main())
