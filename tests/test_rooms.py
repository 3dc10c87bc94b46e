"""The layout README's "Where things are" describes, held: each folder of ``gateway/`` is a
room that uses only the rooms listed above it, and only ``app.py`` builds the services."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"

KNOWING_ALL = frozenset({"app", "cli", "__main__"})
"""What wires the gateway together, and so may use every room (README)."""

KNOWN_EXCEPTIONS = {
    # The configuration's `sms` section is built from the providers' own settings models,
    # which channels/registry.py lists (importing only their pydantic settings modules, a
    # provider itself only when built), so that a provider owns its settings and their
    # environment variables; channels use the configuration's types only to be built.
    ("config", "channels"),
}
"""(room, room it may use although listed below it), each with its reason."""


def rooms() -> list[str]:
    """The rooms in README's order, bottom up: ``errors``, ``text``, ... ``__main__``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things are", 1)[1]
    tree = section.split("```", 2)[1]
    names = re.findall(r"^  ([A-Za-z_]+)(?:/|\.py)\s", tree, re.MULTILINE)
    assert names[0] == "errors" and names[-1] == "__main__", names
    return names


def room_of(path: Path) -> str:
    parts = path.relative_to(GATEWAY).parts
    return parts[0] if len(parts) > 1 else path.stem


def modules() -> Iterator[Path]:
    for path in sorted(GATEWAY.rglob("*.py")):
        if "migrations" not in path.parts and path.name != "__init__.py":
            yield path


def imported_rooms(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """Each room of ``gateway`` the module imports (type-only imports too), with the line."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            names = [[*module, alias.name] for alias in node.names]
        else:
            continue
        for name in names:
            if len(name) > 1 and name[0] == "gateway":
                yield node.lineno, name[1]


def test_every_module_of_the_gateway_is_in_a_room_readme_lists() -> None:
    listed = set(rooms())
    unlisted = sorted(str(p.relative_to(ROOT)) for p in modules() if room_of(p) not in listed)
    assert not unlisted, f"in no room of README's 'Where things are': {unlisted}"


def test_a_room_uses_only_the_rooms_listed_above_it() -> None:
    order = {name: i for i, name in enumerate(rooms())}
    wrong = []
    for path in modules():
        room = room_of(path)
        if room in KNOWING_ALL:
            continue
        for line, used in imported_rooms(path):
            if used in order and order[used] > order[room]:
                if (room, used) not in KNOWN_EXCEPTIONS:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {room} uses {used}")
    assert not wrong, "a room uses one listed below it in README:\n" + "\n".join(wrong)


def test_the_check_sees_every_form_of_import() -> None:
    """Absolute, relative, in a function, for type checking only, of a module or a name."""
    source = """
import gateway.jobs.worker
from typing import TYPE_CHECKING
from gateway import web
from ..ussd import engine
from . import service
if TYPE_CHECKING:
    from gateway.cli.notify import run
def later():
    from gateway.reports.review import monthly_review
"""
    path = GATEWAY / "campaigns" / "example.py"
    found = [room for _, room in imported_rooms(path, source)]
    assert found == ["jobs", "web", "ussd", "campaigns", "cli", "reports"]


SERVICES = frozenset(
    {
        "ArqDispatcher",
        "ArqRunScheduler",
        "ArqSecondChance",
        "CampaignRunner",
        "Campaigns",
        "ComplaintService",
        "GatewayCallbacks",
        "Inbox",
        "Lifecycle",
        "MissedCalls",
        "Notices",
        "Outbox",
        "SessionRecorder",
        "UssdEngine",
        "build_providers",
        "ticket_codec",
    }
)
"""What :func:`gateway.app.build_services` builds."""


def test_only_app_py_builds_the_services() -> None:
    """The web side, the workers and every command take the services from
    ``gateway.app`` (``build_services``, ``open_services``): one that built its own could
    differ from the server's (as ``python -m gateway worker``'s outbox once had no second
    chance)."""
    consumers = [
        *sorted((GATEWAY / "cli").glob("*.py")),
        *sorted((GATEWAY / "jobs").glob("*.py")),
        *sorted((GATEWAY / "web").rglob("*.py")),
        GATEWAY / "__main__.py",
        ROOT / "server.py",
    ]
    built = []
    for path in consumers:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in SERVICES:
                    built.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(...)")
    assert not built, "built outside gateway/app.py:\n" + "\n".join(built)
