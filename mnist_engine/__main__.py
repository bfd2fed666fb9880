"""`python -m mnist_engine`: see mnist_engine.cli."""

import sys

from mnist_engine.cli import main

sys.exit(main())
