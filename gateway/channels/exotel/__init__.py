"""Exotel (India): SMS with TRAI's DLT data, delivery reports and missed calls, in the
manner of courier's one folder per channel.

* :mod:`.settings` – its settings and environment variables (pydantic only: read by the
  configuration);
* :mod:`.statuses` – its status words and HTTP answers, and what each means to the gateway;
* :mod:`.parse` – its callback payloads and send answers read into neutral types (pure);
* :mod:`.pacing` – keeping under the account's request rate, and honouring ``Retry-After``;
* :mod:`.routes` – its callback routes;
* :mod:`.send` – its SMS API client;
* :mod:`.provider` – :class:`~.provider.Exotel`, assembling them.
"""
