"""Reading a YAML or JSON document that a person (or an attacker) wrote, with bounds.

A recipe is a few hundred bytes of settings, so anything far larger is refused
before it can cost time or memory: files over :data:`MAX_BYTES`, documents that
expand (through YAML aliases) to more than :data:`MAX_NODES` values or nest
deeper than :data:`MAX_DEPTH`, recursive aliases, duplicate keys (the later one
would silently win), keys that are not strings, and text that is not UTF-8.
Every refusal is a :class:`kopt.ConfigError` keyed by the caller's setting name.

Example:

>>> parse_document("epochs: 3\\nseed: 1\\n", "yaml", key="recipe", name="r.yaml")
{'epochs': 3, 'seed': 1}
>>> parse_document("a: &x [1, 2]\\nb: *x\\n", "yaml", key="recipe", name="r.yaml")
{'a': [1, 2], 'b': [1, 2]}
"""

import json
import re

from kopt.errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "parse_document", "read_document"]

MAX_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 32


def read_document(path, *, key):
    """Reads ``path`` (``.json``, else YAML) and returns its plain-data content.

    Raises:
        ConfigError: Keyed ``key``, for an unreadable, oversized, non-UTF-8 or
            malformed file, or one that breaks a bound above.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(key, path, f"cannot read the file: {err.strerror or err}") from err
    if len(raw) > MAX_BYTES:
        raise ConfigError(key, path, f"is over {MAX_BYTES // 1024} KiB; a recipe is a short list of settings")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(key, path, f"is not UTF-8 text (byte {err.start} is 0x{raw[err.start]:02x})") from err
    return parse_document(text, "json" if path.endswith(".json") else "yaml", key=key, name=path)


def parse_document(text, syntax, *, key, name):
    """Parses ``text`` as ``"yaml"`` or ``"json"`` within the module's bounds.

    Args:
        text: The document.
        syntax: ``"yaml"`` or ``"json"``.
        key: The setting errors are keyed by (e.g. ``"recipe"``).
        name: The value errors quote (the file's path).

    Returns:
        Plain dicts, lists and scalars, with no two places sharing one object.
    """
    try:
        if syntax == "json":
            data = json.loads(text, object_pairs_hook=_json_object)
        else:
            data = _load_yaml(text)
    except _DuplicateKey as err:
        raise ConfigError(key, name, f"the key {err.args[0]!r} appears twice in one mapping") from err
    except RecursionError as err:
        raise ConfigError(key, name, f"nests deeper than {MAX_DEPTH} levels") from err
    except (ValueError, _yaml_error()) as err:
        if isinstance(err, ConfigError):
            raise
        detail = " ".join(str(err).split())[:300]
        raise ConfigError(key, name, f"not valid {syntax.upper()}: {detail}") from err
    return _plain(data, key, name, "", 0, [0])


class _DuplicateKey(Exception):
    pass


def _json_object(pairs):
    result = {}
    for item_key, value in pairs:
        if item_key in result:
            raise _DuplicateKey(item_key)
        result[item_key] = value
    return result


def _plain(value, key, name, path, depth, count):
    """A copy of ``value`` with string keys only, no shared objects, within the bounds."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise ConfigError(key, name, f"holds more than {MAX_NODES} values (YAML aliases included)")
    if depth > MAX_DEPTH:
        raise ConfigError(key, name, f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        copy = {}
        for item_key, item in value.items():
            if not isinstance(item_key, str):
                where = f" under {path}" if path else ""
                raise ConfigError(key, name, f"the key {item_key!r}{where} is not a string; quote it")
            copy[item_key] = _plain(item, key, name, f"{path}.{item_key}" if path else item_key, depth + 1, count)
        return copy
    if isinstance(value, list):
        return [_plain(item, key, name, f"{path}[{i}]", depth + 1, count) for i, item in enumerate(value)]
    return value


def _load_yaml(text):
    import yaml

    class Loader(yaml.SafeLoader):
        """YAML 1.1 reads ``1e-3`` as a string; a recipe means the number."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"), list("-+0123456789.")
    )
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(root):
    """Refuses a composed YAML graph that is recursive, too deep, too large once expanded, or has duplicate keys."""
    import yaml

    sizes = {}  # id(node) -> expanded size; None while the node is being walked
    stack = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise RecursionError
        children = _children(node)
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_NODES:
                raise yaml.YAMLError(f"the document expands to more than {MAX_NODES} values (through aliases)")
            continue
        if id(node) in sizes:
            if sizes[id(node)] is None:
                raise yaml.YAMLError("an alias refers to the node that contains it (a recursive document)")
            continue
        sizes[id(node)] = None
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        raise _DuplicateKey(key_node.value)
                    seen.add(key_node.value)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children)


def _children(node):
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _yaml_error():
    import yaml

    return yaml.YAMLError
