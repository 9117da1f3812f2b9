"""docker-compose 1.29 (Debian's package, the one this machine can install) with the one
translation it lacks: `security_opt: systempaths=unconfined`, which the docker CLI and Docker
Compose v2 turn into empty MaskedPaths and ReadonlyPaths before calling the engine (the engine
itself does not know the option). Everything else is compose 1.29 as it is.

    /usr/bin/python3 tests/deploy/compose_v1.py -p PROJECT up -d     (the Python compose lives in)
"""

import sys

from compose.cli.main import main
from compose.service import Service

_host_config = Service._get_container_host_config


def _with_system_paths_unconfined(self, *args, **kwargs):
    config = _host_config(self, *args, **kwargs)
    options = config.get("SecurityOpt") or []
    if "systempaths=unconfined" in options:
        config["SecurityOpt"] = [option for option in options if option != "systempaths=unconfined"]
        config["MaskedPaths"] = []
        config["ReadonlyPaths"] = []
    return config


Service._get_container_host_config = _with_system_paths_unconfined

if __name__ == "__main__":
    sys.exit(main())
