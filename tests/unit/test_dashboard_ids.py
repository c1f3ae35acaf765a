"""Component ids agree across the layout, the callbacks and the JS assets: a typo in any of
them would otherwise fail silently in the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dashboard.app import ASSETS, create_dash_app
from dashboard.layout import serve_layout


def components(tree: Any) -> Iterator[Any]:
    """Every Dash component in a component tree (lists and children followed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif hasattr(node, "to_plotly_json"):
            yield node
            if getattr(node, "children", None) is not None:
                stack.append(node.children)


def layout_ids(component: Any) -> set[str]:
    """Every string id in a component tree."""
    return {node.id for node in components(component)
            if isinstance(getattr(node, "id", None), str)}


def all_layout_ids() -> set[str]:
    """The ids of the shell and of every registered page (the page container shows one)."""
    import dash

    create_dash_app("http://127.0.0.1:1")  # registers the pages
    from dashboard.pages import PAGE_MODULES

    assert len(dash.page_registry) == len(PAGE_MODULES)
    found = layout_ids(serve_layout("http://127.0.0.1:1"))
    for page in dash.page_registry.values():
        found |= layout_ids(page["layout"]())
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
    """Ids the JS assets write to or look up, and the inputs whose trigger they test
    (`triggered("chart-meta")`, `"user-snapshot.data"`)."""
    calls = re.compile(
        r"""(?:set_props|getElementById|click|triggered)\(\s*"([a-z0-9-]+)\"""")
    props = re.compile(r""""([a-z0-9-]+)\.(?:data|message|status|opened)\"""")
    ids: set[str] = set()
    for path in Path(ASSETS).glob("*.js"):
        text = path.read_text()
        ids.update(calls.findall(text), props.findall(text))
    return ids


def test_every_id_the_callbacks_and_the_js_use_is_in_the_layout() -> None:
    app = create_dash_app("http://127.0.0.1:1")
    present = all_layout_ids()
    used_by_callbacks = callback_ids(app)
    assert len(used_by_callbacks) > 50 and len(js_ids()) > 10  # the parsers found them
    assert used_by_callbacks - present == set()
    # The JS builds a few ids at run time ("tf-" + interval): those are checked by prefix.
    dynamic = {"tf-", "nav-"}
    assert {i for i in js_ids() - present if i not in dynamic} == set()


def js_writes() -> set[str]:
    """Ids the JS assets write outside the callback graph (set_props)."""
    pattern = re.compile(r"""set_props\(\s*"([a-z0-9-]+)\"""")
    return {i for path in Path(ASSETS).glob("*.js") for i in pattern.findall(path.read_text())}


def test_the_js_writes_nothing_outside_the_callback_graph() -> None:
    # The streams are EventStream components and every flow from them is a callback; so are
    # the session's refresh and a click on the order book.
    assert js_writes() == set()


def spelled_ids(source: str) -> set[str]:
    """Ids written as string literals: `id="..."` and the first argument of Input, Output,
    State."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name in ("Input", "Output", "State") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
        for kw in node.keywords:
            if (kw.arg == "id" and isinstance(kw.value, ast.Constant)
                    and isinstance(kw.value.value, str)):
                found.add(kw.value.value)
    return found


def test_every_id_of_the_ids_module_is_laid_out_or_drawn_by_a_callback() -> None:
    from dashboard import ids

    present = all_layout_ids()
    drawn_by_callbacks = {ids.KEYS_REJECTED}  # account_view.show_keys renders it
    assert set(ids.static_ids().values()) - present - drawn_by_callbacks == set()
    assert {ids.page(p) for p in ids.PAGES} <= present
    assert {ids.nav_link(p) for p in ids.NAV_PAGES} <= present


def test_no_module_spells_an_id_the_ids_module_defines() -> None:
    from dashboard import ids

    defined = set(ids.static_ids().values())
    spelled = {path.name: spelled_ids(path.read_text()) & defined
               for path in Path(ids.__file__).parent.glob("*.py") if path.name != "ids.py"}
    assert {name: found for name, found in spelled.items() if found} == {}


def test_spelled_ids_finds_literals_so_the_check_above_can_fail() -> None:
    source = ('Output("auth", "data"); html.Div(id="nav"); Input(ids.URL, "pathname")')
    assert spelled_ids(source) == {"auth", "nav"}


def test_no_loop_runs_through_two_callbacks_but_the_address_bar_and_the_symbol_dropdown() -> None:
    """A loop of callbacks (A's output an input of B, B's an input of A) makes Dash hold A
    until B's round trip is done on every run: the merge of the user stream once fed the
    snapshot callback that fed it, and click -> FILLED doubled. A callback may read its own
    output. The one loop by design: the path gives `route`, `route` the symbol dropdown's
    value, a symbol picked there the path (dashboard/routing.py, assets/40-ui.js)."""
    import dash._callback as cb

    app = create_dash_app("http://127.0.0.1:1")
    entries = {**cb.GLOBAL_CALLBACK_MAP, **app.callback_map}

    def props(key: str) -> set[str]:
        return {p.lstrip(".").split("@")[0] for p in key.strip(".").split("...") if p}

    outputs = {key: props(key) for key in entries}
    inputs = {key: {f"{d['id']}.{d['property']}" for d in entries[key].get("inputs", [])}
              for key in entries}
    feeds = {a: {b for b in entries if b != a and outputs[a] & inputs[b]} for a in entries}
    looping = set()
    for start in entries:  # is there a path from start back to start through others?
        stack, seen = list(feeds[start]), set()
        while stack:
            node = stack.pop()
            if start in feeds[node]:
                looping.add(start)
                break
            if node not in seen:
                seen.add(node)
                stack.extend(feeds[node])
    by_design = {"route.data", "symbol-select.value", "url.pathname"}
    assert [sorted(outputs[k]) for k in looping if not outputs[k] & by_design] == []
    assert len(looping) == 3  # the design's loop is still found: the check works
