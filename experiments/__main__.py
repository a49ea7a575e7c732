"""Command-line entry point: ``python -m experiments {list,run} ...``."""
import sys

from experiments.runner import main

if __name__ == "__main__":
    sys.exit(main())
