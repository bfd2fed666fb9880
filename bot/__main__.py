"""`python -m bot`: run the service (see bot.service)."""

import sys

from bot.service import main

# The guard keeps spawned worker processes, which import this module, from starting it again.
if __name__ == "__main__":
    sys.exit(main())
