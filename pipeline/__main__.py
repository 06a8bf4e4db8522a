"""`python -m pipeline <command> key=value ...`"""

from pipeline.cli import main

raise SystemExit(main())
