"""``python -m upscale_async.cli``: the ``upscale-async`` command."""

import sys

from ._main import main

if __name__ == "__main__":
    sys.exit(main())
