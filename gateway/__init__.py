"""Sampark: an SMS and USSD gateway for citizens' grievances."""

__version__ = "0.1.0"
