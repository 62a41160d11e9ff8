import sys

from tests.chaos.suite import main

if __name__ == "__main__":
    sys.exit(main())
