"""Command-line entry point: ``python -m experiments {list,show,run,report} ...`` (also the ``sparsejax`` script)."""
import sys

from experiments.runner import main

if __name__ == "__main__":
    sys.exit(main())
