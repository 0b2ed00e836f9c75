"""python3 -m faultsuite (with scripts/lib on PYTHONPATH): what scripts/faults runs."""
from .cli import main

main()
