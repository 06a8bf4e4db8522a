"""The one YAML loader for text a user wrote: conf files, key=value overrides, lessons, spaces.

`yaml.safe_load` builds no Python objects from tags, but it still trusts the document's shape:
a 600-byte "billion laughs" of nested aliases loads in microseconds as shared references and
then expands to gigabytes when the config is dumped or serialized; 1,000 nested brackets
overflow the recursion limit with a 3,000-line traceback; a key written twice is silently
merged (the last one wins). So the document is bounded while it is COMPOSED, before anything
is built or expanded: its size in bytes, its nesting depth, the number of aliases and the number
of nodes it would have with every alias expanded (an alias to a node that is still open, a
cycle, is refused too). Duplicate keys are refused naming the key and its line. Every refusal
is one ValueError line naming the source, the bound and the value.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent

# Far above any config or lesson shipped (the largest lesson is 3.5 kB, depth 5, no aliases).
MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts depth, aliases and expanded nodes as it goes."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.aliases = 0
        self.sizes: dict[int, int] = {}   # id(node) -> node count with aliases expanded

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            return self._alias()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1
            raise ValueError(f"{self.source}: YAML nested deeper than {MAX_DEPTH} levels "
                             f"(line {line})")
        node = super().compose_node(parent, index)
        self.depth -= 1
        # the node count with every alias expanded, as a dump or a copy would write it
        size = 1 + sum(self.sizes.get(id(c), 1) for c in _children(node))
        if size > MAX_NODES:
            raise ValueError(f"{self.source}: YAML expands to more than {MAX_NODES} nodes with "
                             f"its aliases (line {node.start_mark.line + 1})")
        self.sizes[id(node)] = size
        return node

    def _alias(self):
        event = self.peek_event()
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise ValueError(f"{self.source}: more than {MAX_ALIASES} YAML aliases "
                             f"(*{event.anchor} on line {event.start_mark.line + 1})")
        node = super().compose_node(None, None)
        if id(node) not in self.sizes:  # the anchored node is still open: a cycle
            raise ValueError(f"{self.source}: YAML alias *{event.anchor} on line "
                             f"{event.start_mark.line + 1} refers to a node that contains it")
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then overrides
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                    seen.setdefault(key, line)
                except TypeError:  # an unhashable key: the constructor below says so
                    continue
                if first is not None:
                    raise ValueError(f"{self.source}: duplicate YAML key {key!r} on line "
                                     f"{line} (first on line {first})")
        return super().construct_mapping(node, deep=deep)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document from a user, bounded (see the module docstring)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ValueError(f"{source}: YAML document of {size} bytes is larger than the limit "
                         f"of {MAX_BYTES} bytes")
    loader = _BoundedLoader(text, source)
    try:
        return loader.get_single_data()
    except (yaml.YAMLError, ConstructorError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{source}: not valid YAML ({first})") from None
    finally:
        loader.dispose()
