"""`python -m anthropic_otel.testing`: the fake Anthropic API until Ctrl-C, as `anthropic-otel fake-server`."""

import sys

from ._cli import main

sys.exit(main())
