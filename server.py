"""Run the Sampark gateway: ``python server.py [--config PATH]``.

By default this starts the web server, the arq worker and an embedded Redis in one
process, on the settings in ``config.yaml`` and the environment (see README).
"""

from __future__ import annotations

import sys

from gateway.__main__ import main as gateway_main
from gateway.cli.base import CommandParser


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(description="Run the Sampark gateway.")
    parser.add_argument("--config", help="configuration file (default: ./config.yaml)")
    parser.add_argument("--no-worker", action="store_true", help="run the worker separately")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    forwarded = ["--config", args.config] if args.config else []
    forwarded.append("serve")
    forwarded += ["--no-worker"] if args.no_worker else []
    forwarded += ["--verbose"] if args.verbose else []
    gateway_main(forwarded)


if __name__ == "__main__":
    main(sys.argv[1:])
