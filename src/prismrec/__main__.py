"""``python -m prismrec ...`` (and ``torchrun ... -m prismrec ...``): the ``prismrec`` command."""

import sys

from prismrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
