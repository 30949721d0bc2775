"""Where a value is in the YAML: the nodes behind keys and list items, and their lines (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def key_node(mapping: yaml.Node, key: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of `key` in a mapping node; the last one, as YAML loads it."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    found = None
    for name_node, value_node in mapping.value:
        if isinstance(name_node, yaml.ScalarNode) and _same_key(name_node, key):
            found = (name_node, value_node)
    return found


def _same_key(node: yaml.ScalarNode, key: Any) -> bool:
    if isinstance(key, str):
        return bool(node.value == key)
    try:
        return bool(yaml.safe_load(node.value) == key)
    except yaml.YAMLError:
        return False


def node_at(root: yaml.Node, path: Sequence[Any]) -> yaml.Node:
    """The deepest node along a JSON path (keys and list indexes)."""
    node = root
    for step in path:
        if isinstance(node, yaml.MappingNode):
            pair = key_node(node, step)
            if pair is None:
                return node
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return node
            node = node.value[step]
        else:
            return node
    return node
