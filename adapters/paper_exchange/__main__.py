"""`python -m adapters.paper_exchange --port N --state-dir D`."""

import sys

from adapters.paper_exchange.runner import main

sys.exit(main())
