"""``python -m tserver``: the same as the ``tserver`` console script."""

from tserver.cli import main

raise SystemExit(main())
