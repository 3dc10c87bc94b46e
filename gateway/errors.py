"""The one error for bad input, raised by every room and answered by every edge.

A value that cannot be taken (a callback's form field, a complaint's block, a campaign's
template) is refused with a :class:`FieldError` naming the field and the problem. The
edges turn it into their own answer, each in one place: the staff API a 400 naming the
field, a provider's callback route a 400, the command line an error line.
"""

from __future__ import annotations

__all__ = ["FieldError"]


class FieldError(ValueError):
    """``field`` cannot be taken as it is: ``problem`` says why (``str()``: both)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
