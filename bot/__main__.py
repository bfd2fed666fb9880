"""`python -m bot`: start the Telegram service (see bot.app)."""

import sys

from bot.app import main

sys.exit(main())
