"""``python -m trading_mcp`` is the ``trading-mcp`` command."""

import sys

from trading_mcp.cli import main

sys.exit(main())
