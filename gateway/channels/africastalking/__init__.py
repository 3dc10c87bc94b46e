"""Africa's Talking (AT): everything AT-specific, in the manner of courier's one folder per
channel.

* :mod:`.settings` – its settings and environment variables (pydantic only: read by the
  configuration);
* :mod:`.statuses` – its status words and codes, and which mean the number opted out;
* :mod:`.parse` – its callback payloads read into neutral types (pure);
* :mod:`.routes` – its callback routes;
* :mod:`.send` – its SMS API client;
* :mod:`.provider` – :class:`~.provider.AfricasTalking`, assembling them.

This package's own module stays empty so that reading the settings does not load the HTTP
client (Python runs a package's ``__init__`` before any of its modules).
"""
