import sys

from semprior.cli.main import main

sys.exit(main())
