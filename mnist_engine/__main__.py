"""`python -m mnist_engine`: see mnist_engine.cli."""

import sys

from mnist_engine.cli import main

# The guard keeps spawned worker processes, which import this module, from starting it again.
if __name__ == "__main__":
    sys.exit(main())
