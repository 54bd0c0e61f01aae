"""``python -m validator`` behaves like ``pinpoint-preflight``."""

from validator.cli import main

if __name__ == "__main__":
    main()
