"""Versions of a question: editing a turn keeps what it replaced, as a tree of branches.

Every message carries a `branch` (a small int, per conversation; 0 is the original). A
branch other than 0 is an edit: it starts at one turn with its own question, and below
that turn it shares its parent branch's messages. `Conversation.versions` holds the tree
and which version of each question is shown::

    {"branches": {"<id>": [<parent id>, <fork turn>]},
     "shown": {"<origin id>:<turn>": <shown branch id>}}

The versions of a question at turn T are its *group*: the branch that holds the turn
before any edit of it (the origin) and every branch forked at T from a member. Each owns
the suffix that followed its question (answers, their attempts, later turns, and edits
made further down, each with its own remembered choice). The shown path is one walk from
the root: at each fork turn the group's shown member takes over. A page, a request
context or an export of "what is shown" filters messages with `Path.q()`: one query,
whatever the number of versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Max, Q

if TYPE_CHECKING:
    from chat.models import Conversation

ROOT = 0
# Turns start at 1; the root covers everything below its first fork.
_BEFORE_ALL = -1


@dataclass(frozen=True)
class Group:
    """The versions of the question at `turn` on the shown path."""

    turn: int
    origin: int
    members: list[int]
    shown: int

    @property
    def index(self) -> int:
        return self.members.index(self.shown) + 1

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def prev(self) -> int | None:
        i = self.index - 1
        return self.members[i - 1] if i > 0 else None

    @property
    def next(self) -> int | None:
        i = self.index - 1
        return self.members[i + 1] if i + 1 < len(self.members) else None


@dataclass
class Path:
    """Segments (branch, first turn, end turn or None): which branch holds each turn."""

    segments: list[tuple[int, int, int | None]]
    groups: dict[int, Group] = field(default_factory=dict)

    @property
    def leaf(self) -> int:
        return self.segments[-1][0]

    @property
    def leaf_start(self) -> int:
        return self.segments[-1][1]

    def branch_at(self, turn: int) -> int:
        for branch, start, end in self.segments:
            if start <= turn and (end is None or turn < end):
                return branch
        return self.segments[0][0]

    def contains(self, message: Any) -> bool:
        branch = message.get("branch") if isinstance(message, dict) else message.branch
        turn = message["turn"] if isinstance(message, dict) else message.turn
        return self.branch_at(turn) == (branch or ROOT)

    def q(self, prefix: str = "") -> Q:
        """The messages on this path, as a filter (prefix e.g. "messages__")."""
        condition = Q()
        for branch, start, end in self.segments:
            if end is not None and end <= start:
                continue  # an empty stretch: a version edited at its own first turn
            part = Q(**{f"{prefix}branch": branch})
            if start > _BEFORE_ALL:
                part &= Q(**{f"{prefix}turn__gte": start})
            if end is not None:
                part &= Q(**{f"{prefix}turn__lt": end})
            condition |= part
        return condition


class Tree:
    def __init__(self, versions: Any) -> None:
        versions = versions if isinstance(versions, dict) else {}
        self.branches: dict[int, tuple[int, int]] = {
            int(k): (int(v[0]), int(v[1])) for k, v in (versions.get("branches") or {}).items()
        }
        self.shown: dict[str, int] = {
            str(k): int(v) for k, v in (versions.get("shown") or {}).items()
        }
        self.children: dict[int, list[tuple[int, int]]] = {}
        for branch, (parent, turn) in sorted(self.branches.items()):
            self.children.setdefault(parent, []).append((turn, branch))

    def data(self) -> dict[str, Any]:
        if not self.branches:
            return {}
        return {
            "branches": {str(k): [p, t] for k, (p, t) in sorted(self.branches.items())},
            "shown": dict(sorted(self.shown.items())),
        }

    def group(self, origin: int, turn: int) -> list[int]:
        members, todo = {origin}, [origin]
        while todo:
            for fork, child in self.children.get(todo.pop(), []):
                if fork == turn and child not in members:
                    members.add(child)
                    todo.append(child)
        return sorted(members)

    def path(self) -> Path:
        """The shown path: from the root, at each fork the shown version takes over."""
        segments: list[tuple[int, int, int | None]] = []
        groups: dict[int, Group] = {}
        current, start = ROOT, _BEFORE_ALL
        while True:
            forks = sorted({t for t, _ in self.children.get(current, []) if t > start})
            for turn in forks:
                members = self.group(current, turn)
                shown = self.shown.get(f"{current}:{turn}", current)
                if shown not in members:
                    shown = current
                groups[turn] = Group(turn, current, members, shown)
                if shown != current:
                    segments.append((current, start, turn))
                    current, start = shown, turn
                    break
            else:
                segments.append((current, start, None))
                return Path(segments, groups)

    def ancestors(self, branch: int) -> Path:
        """The path that leads to `branch` (a run's context, whatever is shown now)."""
        chain = [branch]
        while chain[-1] != ROOT and chain[-1] in self.branches and len(chain) <= len(self.branches):
            chain.append(self.branches[chain[-1]][0])
        chain.reverse()
        segments: list[tuple[int, int, int | None]] = []
        for i, current in enumerate(chain):
            start = self.branches[current][1] if current in self.branches else _BEFORE_ALL
            end = self.branches[chain[i + 1]][1] if i + 1 < len(chain) else None
            segments.append((current, start, end))
        return Path(segments)

    def add(self, *, parent: int, turn: int) -> int:
        branch = max(self.branches, default=ROOT) + 1
        self.branches[branch] = (parent, turn)
        self.children.setdefault(parent, []).append((turn, branch))
        return branch

    def descendants(self, branch: int, *, after: int) -> set[int]:
        """The branches that live inside `branch`'s version below `after`: its children
        forked later, and all of theirs."""
        found: set[int] = set()
        todo = [c for t, c in self.children.get(branch, []) if t > after]
        while todo:
            child = todo.pop()
            found.add(child)
            todo += [c for _, c in self.children.get(child, [])]
        return found

    def remove(self, *, group: Group, member: int) -> tuple[set[int], int | None]:
        """Take one version out of the group at `group.turn`, with what followed it.

        Returns (the branches whose messages all go, the branch whose messages move into
        the origin's when the origin's own version goes: the origin keeps the turns
        before, the oldest other version takes its place). The version before the removed
        one is shown (or the first)."""
        turn, origin = group.turn, group.origin
        gone = self.descendants(member, after=turn)
        promoted = None
        if member != origin:
            gone.add(member)
            parent = self.branches[member][0]
            # Versions edited from this one stay versions of the question.
            for child in [c for t, c in self.children.get(member, []) if t == turn]:
                self.branches[child] = (parent, turn)
            before = group.members[group.members.index(member) - 1]
        else:
            promoted = min(m for m in group.members if m != origin)
            for _, child in self.children.get(promoted, []):
                self.branches[child] = (origin, self.branches[child][1])

            def renamed(key: str) -> str:
                owner, _, at = key.partition(":")
                return f"{origin}:{at}" if owner == str(promoted) else key

            self.shown = {
                renamed(k): (origin if v == promoted else v) for k, v in self.shown.items()
            }
            self.branches.pop(promoted)
            before = origin
        for branch in gone:
            self.branches.pop(branch, None)
        self.shown = {
            k: v
            for k, v in self.shown.items()
            if int(k.partition(":")[0]) not in gone and v not in gone
        }
        self.children = {}
        for branch, (parent, fork) in sorted(self.branches.items()):
            self.children.setdefault(parent, []).append((fork, branch))
        self.show(origin=origin, turn=turn, branch=before)
        return gone, promoted

    def show(self, *, origin: int, turn: int, branch: int) -> None:
        if branch == origin:
            self.shown.pop(f"{origin}:{turn}", None)
        else:
            self.shown[f"{origin}:{turn}"] = branch


def path_of(conversation: Any) -> Path:
    return Tree(conversation.versions).path()


def clean(raw: Any, where: str, errors: list[str]) -> dict[str, Any]:
    """An imported `versions` object, checked (the schema checked its shape): each
    branch's parent is an earlier branch (so the tree has no cycle), each shown entry
    names a version of that question."""
    if not raw:
        return {}
    branches = raw.get("branches") or {}
    for key, (parent, _turn) in branches.items():
        if not key.isdigit() or int(key) == ROOT:
            errors.append(f"{where}.branches.{key}: a branch id is a number above 0")
        elif parent != ROOT and (str(parent) not in branches or parent >= int(key)):
            errors.append(f"{where}.branches.{key}: parent {parent} is not an earlier branch")
    if any(e.startswith(f"{where}.branches") for e in errors):
        return {}
    tree = Tree(raw)
    for key, shown in (raw.get("shown") or {}).items():
        origin, _, turn = key.partition(":")
        if not (origin.isdigit() and turn.isdigit()):
            errors.append(f"{where}.shown.{key}: a key is <origin branch>:<turn>")
        elif shown not in tree.group(int(origin), int(turn)):
            errors.append(f"{where}.shown.{key}: branch {shown} is not a version of that turn")
    return tree.data()


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "branches": {
            "type": "object",
            "maxProperties": 10_000,
            "additionalProperties": {
                "type": "array",
                "prefixItems": [
                    {"type": "integer", "minimum": 0},
                    {"type": "integer", "minimum": 0, "maximum": 2_147_483_647},
                ],
                "minItems": 2,
                "maxItems": 2,
            },
        },
        "shown": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    },
}


def next_turn(*, conversation: Conversation, path: Path | None = None) -> int:
    """The number the next question of the shown version gets."""
    path = path or path_of(conversation)
    return (conversation.messages.filter(path.q()).aggregate(m=Max("turn"))["m"] or 0) + 1
