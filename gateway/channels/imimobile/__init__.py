"""IMImobile's USSD over HTTP (India), as vumi implemented it for Indian operators: a USSD
aggregator, in the manner of courier's one folder per channel.

* :mod:`.parse` – its request read into a neutral hop or session end (pure);
* :mod:`.routes` – its callback route, answering the screen as the body and
  ``X-USSD-SESSION`` as the continue/end flag;
* :mod:`.provider` – :class:`~.provider.Imimobile`, assembling them (it sends no SMS).
"""
