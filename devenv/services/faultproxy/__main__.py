"""`python -m devenv.services.faultproxy`: the process the supervisor runs."""

import sys

from devenv.services.faultproxy.process import main

sys.exit(main())
