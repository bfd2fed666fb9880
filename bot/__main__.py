"""`python -m bot`: start the Telegram service (see bot.app)."""

import sys

from bot.app import main

# The guard keeps spawned worker processes, which import this module, from starting it again.
if __name__ == "__main__":
    sys.exit(main())
