"""Blue/green's colours kept in HAProxy's config (roles/lb_haproxy/module_utils/haproxy_config.py)."""

from __future__ import annotations

from types import ModuleType

from role_files import load_role_file

CONFIG = """global
    stats socket /run/haproxy/admin.sock mode 660 level admin

frontend web
    bind :80
    default_backend app

backend app
    option httpchk GET /health
    server app1 10.0.0.12:8080 check   # blue
    server app2 10.0.0.13:8080   check disabled
    server app3 10.0.0.14:8080 check disabled weight 10

listen other
    server app1 10.0.0.12:9090 check
"""


def _config() -> ModuleType:
    return load_role_file("lb_haproxy/module_utils/haproxy_config.py")


def test_the_retired_colour_is_disabled_and_the_serving_one_enabled_in_its_backend_only() -> None:
    text, missing = _config().mark_colours(CONFIG, "app", ["app2", "app3"], ["app1"])
    assert missing == []
    assert text == CONFIG.replace("check   # blue", "check disabled   # blue").replace(
        "8080   check disabled\n", "8080   check\n").replace("check disabled weight 10", "check weight 10")
    assert "server app1 10.0.0.12:9090 check\n" in text  # another proxy's server of the same name is left alone
    again, _ = _config().mark_colours(text, "app", ["app2", "app3"], ["app1"])
    assert again == text
    back, _ = _config().mark_colours(text, "app", ["app1"], ["app2", "app3"])
    assert back == CONFIG.replace("8080 check disabled weight 10", "8080 check weight 10 disabled")


def test_a_server_without_a_line_in_the_backend_is_named_and_nothing_changes() -> None:
    text, missing = _config().mark_colours(CONFIG, "other", ["app1"], ["app2"])
    assert (text, missing) == (CONFIG, ["app2"])
