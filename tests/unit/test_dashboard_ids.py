"""Component ids agree across the layout, the callbacks and the JS assets: a typo in any of
them would otherwise fail silently in the browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dashboard.app import ASSETS, create_dash_app
from dashboard.layout import serve_layout


def layout_ids(component: Any) -> set[str]:
    """Every string id in a component tree."""
    found: set[str] = set()
    stack = [component]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if not hasattr(node, "to_plotly_json"):
            continue
        cid = getattr(node, "id", None)
        if isinstance(cid, str):
            found.add(cid)
        children = getattr(node, "children", None)
        if children is not None:
            stack.append(children)
    return found


def callback_ids(app: Any) -> set[str]:
    """The ids of every Input, Output and State of the app's callbacks (pattern ids aside)."""
    import dash._callback as cb

    ids: set[str] = set()
    entries = list(app.callback_map.values()) + list(cb.GLOBAL_CALLBACK_MAP.values())
    for entry in entries:
        for dep in entry.get("inputs", []) + entry.get("state", []):
            if not str(dep["id"]).startswith("{"):
                ids.add(str(dep["id"]))
    for key in list(app.callback_map) + list(cb.GLOBAL_CALLBACK_MAP):
        for part in str(key).strip(".").split("..."):
            cid = part.lstrip(".").rsplit(".", 1)[0]
            if cid and not cid.startswith("{"):
                ids.add(cid.split("@")[0])
    return ids


def js_ids() -> set[str]:
    """Ids the JS assets write to or look up."""
    pattern = re.compile(
        r"""(?:set_props|setStore|getElementById|click)\(\s*"([a-z0-9-]+)\"""")
    ids: set[str] = set()
    for path in Path(ASSETS).glob("*.js"):
        ids.update(pattern.findall(path.read_text()))
    return ids


def test_every_id_the_callbacks_and_the_js_use_is_in_the_layout() -> None:
    app = create_dash_app("http://127.0.0.1:1")
    present = layout_ids(serve_layout("http://127.0.0.1:1"))
    used_by_callbacks = callback_ids(app)
    assert len(used_by_callbacks) > 50 and len(js_ids()) > 15  # the parsers found them
    assert used_by_callbacks - present == set()
    # The JS builds a few ids at run time ("tf-" + interval): those are checked by prefix.
    dynamic = {"tf-", "nav-"}
    assert {i for i in js_ids() - present if i not in dynamic} == set()
