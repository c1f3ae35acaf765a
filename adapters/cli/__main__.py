"""`python -m adapters.cli ...`: the `tradeledger` command (how the supervisor starts children)."""

import sys

from adapters.cli import main

sys.exit(main())
