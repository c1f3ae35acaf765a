"""The trading dashboard (a Dash app). `_js_dist` serves the JS of its own components
(dashboard/components) the way Dash serves any component library's."""

__version__ = "0.1.0"

_js_dist = [{"relative_package_path": "components/event_stream.js", "namespace": "dashboard"}]
